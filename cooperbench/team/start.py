"""Teams start together: each agent of a coop pair waits, for a bounded time, until its teammates have started.

The teammates' conversation is live, so an agent must not work alone while its teammate
sits in a queue behind it (a worker pool smaller than a team). Each agent records itself
in the pair's `started` set and pushes a wake-up into every teammate's `arrived` list;
it then blocks on its own list (BLPOP, no polling) until the whole team is in the set
or the time is up. An agent that gives up takes itself out of the set again, so its
teammate, when it finally starts, gives up too instead of working alone: the pair is
then an infrastructure error that a later `run` picks up. A teammate whose run already
ended (a resumed pair) stays in the set and is not waited for. On the farm an agent waits
so only for a short hold (the `team_start_hold` setting): then it leaves the set and its task
is re-queued, holding no worker slot, and tries again, until the team-start timeout counted
from its first try (`farm/tasks.py`); a slot is never kept idle for long behind other work. An agent that will not
start at all (the experiment's cost cap or time limit is spent) `withdraw`s: its waiting
teammates stop at once and are not started either, so no agent works without its team.
"""

from __future__ import annotations

import time

from .keys import PairKeys
from .mailbox import TTL_SECONDS, connect


class TeamDidNotStart(RuntimeError):
    """A teammate did not start in time: an infrastructure failure, never the agent's."""


class NotTogetherYet(Exception):
    """The teammates are not here yet, and there is time left: try again in `after` seconds."""

    def __init__(self, after: float):
        super().__init__(f"teammates not started yet; again in {after:g} s")
        self.after = after


class TeammateWithdrew(RuntimeError):
    """A teammate will not start (the experiment's budget is spent), so this agent does not either."""


def _keys(experiment: str, pair_key: str) -> tuple[str, PairKeys, str]:
    keys = PairKeys(experiment, pair_key)
    return keys.started, keys, keys.withdrawn


def withdraw(url: str, experiment: str, pair_key: str, agent_id: str, team: list[str], reason: str) -> None:
    """Tell the teammates that `agent_id` will not start, and why; they stop waiting at once."""
    client = connect(url)
    _, keys, withdrawn = _keys(experiment, pair_key)
    with client.pipeline(transaction=True) as p:
        p.hset(withdrawn, agent_id, reason)
        p.expire(withdrawn, TTL_SECONDS)
        _wake(p, keys, [a for a in team if a != agent_id], agent_id)
        p.execute()


def _wake(pipe, keys: PairKeys, mates: list[str], agent_id: str) -> None:
    """Queue a wake-up from `agent_id` into each teammate's `arrived` list."""
    for mate in mates:
        pipe.rpush(keys.arrived(mate), agent_id)
        pipe.expire(keys.arrived(mate), TTL_SECONDS)


def wait_for_team(
    url: str,
    experiment: str,
    pair_key: str,
    agent_id: str,
    team: list[str],
    timeout: float,
    window: float | None = None,
) -> None:
    """Return once every agent of `team` (which includes `agent_id`) has started, within `timeout`
    seconds; else TeamDidNotStart, naming `window` (the whole wait, of which this is the last part)."""
    client = connect(url)
    started, keys, withdrawn = _keys(experiment, pair_key)
    mates = [a for a in team if a != agent_id]
    with client.pipeline(transaction=True) as p:
        p.hdel(withdrawn, agent_id)  # this agent does start now, whatever an earlier attempt said
        p.sadd(started, agent_id)
        p.expire(started, TTL_SECONDS)
        _wake(p, keys, mates, agent_id)
        p.execute()
    deadline = time.monotonic() + timeout
    while True:
        gone = {k.decode(): v.decode() for k, v in client.hgetall(withdrawn).items() if k.decode() in mates}
        if gone:
            client.srem(started, agent_id)
            mate, reason = sorted(gone.items())[0]
            raise TeammateWithdrew(f"teammate {mate} was not started ({reason})")
        missing = sorted(set(mates) - {m.decode() for m in client.smembers(started)})
        if not missing:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            client.srem(started, agent_id)
            raise TeamDidNotStart(
                f"teammate {', '.join(missing)} did not start within {window or timeout:g} s, so the team never ran "
                "together (is the worker pool smaller than a team? give each worker at least 2 processes)"
            )
        client.blpop([keys.arrived(agent_id)], timeout=left)
