"""Every Redis key a pair writes is named by `PairKeys`, so a pair is cleared by name (no SCAN) on a real Redis."""

import threading
import uuid

import redis

from cooperbench.team import start as team_start
from cooperbench.team.keys import PairKeys, clear
from cooperbench.team.liveness import Watch
from cooperbench.team.mailbox import Mailbox

TEAM = ["agent1", "agent2"]


def _pair_keys_in_redis(client, keys: PairKeys) -> set[str]:
    # the test itself may SCAN its own database to see what the code under test wrote
    return {k.decode() for k in client.scan_iter(match=keys.prefix + ":*", count=1000)}


def _everything_a_coop_pair_does(url: str, experiment: str, pair: str) -> None:
    box = Mailbox(url, experiment, pair)
    box.for_agent("agent1").send("agent2", "hello")
    box.for_agent("agent2").send("agent1", "hi")
    box.replay("agent1")
    box.notify("agent2", "a notice")
    watches = [Watch(box, a, [m for m in TEAM if m != a], notify=True, ttl=30).start() for a in TEAM]
    errors = []

    def join(agent):
        try:
            team_start.wait_for_team(url, experiment, pair, agent, TEAM, timeout=10)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=join, args=(a,)) for a in TEAM]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    team_start.withdraw(url, experiment, pair, "agent2", TEAM, "budget spent")
    watches[0].stop(finished=True)  # done:agent1, and a finished notice to agent2
    watches[1].beat()  # alive:agent2 stays until its run ends


def test_every_key_a_coop_pair_writes_is_named_and_cleared_by_name(redis_url):
    experiment = f"keys-{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url(redis_url)
    mine, other = PairKeys(experiment, "repo/task1/f1-f2"), PairKeys(experiment, "repo/task1/f1-f3")
    _everything_a_coop_pair_does(redis_url, experiment, mine.pair)
    _everything_a_coop_pair_does(redis_url, experiment, other.pair)
    written = _pair_keys_in_redis(client, mine)
    assert {mine.log, mine.seq, mine.started, mine.withdrawn, mine.done("agent1"), mine.alive("agent2")} <= written
    assert written <= set(mine.all(TEAM)), written - set(mine.all(TEAM))

    assert clear(client, [(mine, TEAM)]) == len(written)
    assert _pair_keys_in_redis(client, mine) == set()
    assert _pair_keys_in_redis(client, other) != set()  # the other pair kept its keys
    assert Mailbox(redis_url, experiment, other.pair).log() != []


def test_clear_works_in_batches_and_counts_only_existing_keys(redis_url):
    client = redis.Redis.from_url(redis_url)
    pairs = [(PairKeys("batch", f"r/task0/f{i}-f{i + 1}"), TEAM) for i in range(300)]
    for keys, _ in pairs:
        client.set(keys.seq, 1)
        client.rpush(keys.inbox("agent2"), "x")
    assert clear(client, pairs, batch=100) == 600
    assert not any(client.exists(k.seq, k.inbox("agent2")) for k, _ in pairs)
