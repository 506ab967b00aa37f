"""Teammates' liveness on a real Redis: heartbeats, a teammate killed with SIGKILL reported lost (once),
running again, finished, and no false alarm when Redis loses its data."""

import signal
import subprocess
import sys
import time
import uuid

import pytest

from cooperbench.team.liveness import Watch, back_notice, finished_notice, lost_notice
from cooperbench.team.mailbox import Mailbox

from ..conftest import ROOT

TEAMMATE = """
import sys, time
from cooperbench.team.liveness import Watch
from cooperbench.team.mailbox import Mailbox
Watch(Mailbox(sys.argv[1], sys.argv[2], "p"), "agent2", ["agent1"], notify=True, ttl=float(sys.argv[3])).start()
print("alive", flush=True)
time.sleep(600)
"""


class Teammate:
    """agent2's heartbeat in a process of its own, which the test can kill as a crashed worker would die."""

    def __init__(self, redis_url: str, experiment: str, ttl: float):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TEAMMATE, redis_url, experiment, str(ttl)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "alive"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def box(redis_url):
    return Mailbox(redis_url, f"live-{uuid.uuid4().hex[:8]}", "p")


def _until(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _bodies(messages):
    assert all(m.from_farm for m in messages)
    return [m.body for m in messages]


def test_each_change_of_a_teammate_is_told_once(box, redis_url):
    inbox = box.for_agent("agent1")
    me = Watch(box, "agent1", ["agent2"], notify=True, ttl=30)  # rounds driven by hand: no thread
    me.beat()
    mate = Teammate(redis_url, box.prefix.split(":")[1], ttl=1.5)
    me.together()  # both started: from now on a vanished heartbeat is a loss
    try:
        me.beat()
        assert inbox.receive() == []  # running: nothing to say
        mate.kill()
        _until(lambda: not box.redis.exists(box.key("alive:agent2")))  # its heartbeat expires
        me.beat()
        assert _bodies(inbox.receive()) == [lost_notice("agent2")]
        me.beat()
        assert inbox.receive() == [] and me.lost == {"agent2"}  # told once

        mate = Teammate(redis_url, box.prefix.split(":")[1], ttl=1.5)
        me.beat()
        assert _bodies(inbox.receive()) == [back_notice("agent2")]

        # Redis loses every key of the pair (a restart without persistence): absence proves nothing
        box.reset(["agent1", "agent2"])
        me.beat()
        assert inbox.receive() == []
        _until(lambda: box.redis.exists(box.key("alive:agent2")))  # its next heartbeat
        me.beat()
        assert inbox.receive() == [] and me.lost == {"agent2"}
    finally:
        mate.kill()
    assert box.log() == []  # notices are not part of the teammates' conversation


def test_a_teammate_killed_mid_wait_ends_the_wait_within_its_ttl(box, redis_url):
    me = Watch(box, "agent1", ["agent2"], notify=True, ttl=1.5).start()
    mate = Teammate(redis_url, box.prefix.split(":")[1], ttl=1.5)
    me.together()
    try:
        time.sleep(1.2)  # two rounds of agent1's watch see agent2 running
        mate.kill()
        killed = time.monotonic()
        got = box.for_agent("agent1").wait(120)
        took = time.monotonic() - killed
    finally:
        mate.kill()
        me.stop(finished=True)
    assert _bodies(got) == [lost_notice("agent2")]
    assert took < 10, took  # the TTL and a round, not the 120 s the agent was ready to wait
    assert me.lost == {"agent2"}


def test_a_finished_teammate_tells_at_once_and_is_not_lost(box):
    me = Watch(box, "agent1", ["agent2"], notify=True, ttl=30)
    me.beat()
    mate = Watch(box, "agent2", ["agent1"], notify=True, ttl=30).start()
    me.together()
    me.beat()
    mate.stop(finished=True)
    assert _bodies(box.for_agent("agent1").receive()) == [finished_notice("agent2")]
    me.beat()
    assert box.for_agent("agent1").receive() == [] and me.lost == set()
    assert box.finished("agent2") and not box.redis.exists(box.key("alive:agent2"))
    me.stop(finished=False)  # an infrastructure failure: not done, and no notice
    assert not box.finished("agent1") and box.for_agent("agent2").receive() == []


def test_a_teammate_that_leaves_before_the_team_is_together_is_no_loss(box):
    """Waiting for the team, an agent may leave (re-queued, to wait without a worker slot): its
    heartbeat vanishes, and its teammate must neither be told it was lost nor record a loss."""
    me = Watch(box, "agent1", ["agent2"], notify=True, ttl=30)
    me.beat()
    mate = Watch(box, "agent2", ["agent1"], notify=True, ttl=30).start()
    me.beat()
    mate.stop(finished=False)  # re-queued before the team got together
    me.beat()
    assert box.for_agent("agent1").receive() == [] and me.lost == set()
    mate = Watch(box, "agent2", ["agent1"], notify=True, ttl=30).start()  # back: now the team starts
    me.together()
    me.beat()
    mate.stop(finished=False)  # lost after the team was together: that is a loss
    me.beat()
    assert _bodies(box.for_agent("agent1").receive()) == [lost_notice("agent2")] and me.lost == {"agent2"}


def test_an_agent_started_again_is_not_done_and_hears_who_has_finished(box):
    first = Watch(box, "agent2", ["agent1"], notify=True, ttl=30).start()
    first.stop(finished=True)
    Watch(box, "agent1", ["agent2"], notify=True, ttl=30).start().stop(finished=True)
    box.for_agent("agent2").receive()
    again = Watch(box, "agent2", ["agent1"], notify=True, ttl=30).start()  # e.g. a retried attempt
    try:
        assert not box.finished("agent2")
        assert _bodies(box.for_agent("agent2").receive()) == [finished_notice("agent1")]
    finally:
        again.stop(finished=True)


def test_replay_gives_a_restarted_agent_the_whole_conversation(box):
    box.send("agent1", "agent2", "first")
    box.send("agent2", "agent1", "answer")
    box.send("agent1", "agent2", "second")
    assert [m.body for m in box.receive("agent2")] == ["first", "second"]  # read by the run that died
    box.notify("agent2", "a stale notice of that run")
    box.replay("agent2")
    assert [(m.sender, m.body) for m in box.receive("agent2")] == [("agent1", "first"), ("agent1", "second")]
    box.replay("agent1")
    assert [m.body for m in box.receive("agent1")] == ["answer"]
