"""The Redis mailbox: ordering, blocking wait, no loss for a late starter, the stored log."""

import threading
import time
import uuid

from cooperbench.team.mailbox import Mailbox


def _box(redis_url):
    return Mailbox(redis_url, f"exp-{uuid.uuid4().hex[:6]}", "repo_task/task1/f1-f2")


def test_messages_arrive_in_order_with_sender_and_time(redis_url):
    box = _box(redis_url)
    a1, a2 = box.for_agent("agent1"), box.for_agent("agent2")
    before = time.time()
    for i in range(5):
        a1.send("agent2", f"m{i}")
    got = a2.receive()
    assert [m.body for m in got] == [f"m{i}" for i in range(5)]
    assert all(m.sender == "agent1" and m.recipient == "agent2" and m.sent_at >= before for m in got)
    assert a2.receive() == []  # taken once


def test_message_sent_before_recipient_starts_is_not_lost(redis_url):
    box = _box(redis_url)
    box.for_agent("agent1").send("agent2", "early note")
    # agent2 starts later, with a new connection
    late = Mailbox(redis_url, box.prefix.split(":")[1], "repo_task/task1/f1-f2").for_agent("agent2")
    assert [m.body for m in late.wait(timeout=1)] == ["early note"]


def test_wait_blocks_until_a_message_arrives(redis_url):
    box = _box(redis_url)
    a1, a2 = box.for_agent("agent1"), box.for_agent("agent2")
    threading.Timer(0.5, lambda: a1.send("agent2", "ping")).start()
    t0 = time.monotonic()
    got = a2.wait(timeout=10)
    waited = time.monotonic() - t0
    assert [m.body for m in got] == ["ping"]
    assert 0.3 < waited < 5


def test_a_wait_longer_than_the_clients_default_read_timeout_still_gets_its_message(redis_url):
    box = _box(redis_url)
    a1, a2 = box.for_agent("agent1"), box.for_agent("agent2")
    threading.Timer(6.0, lambda: a1.send("agent2", "late reply")).start()  # redis-py's default read timeout is 5 s
    t0 = time.monotonic()
    assert [m.body for m in a2.wait(timeout=20)] == ["late reply"]
    assert 5.5 < time.monotonic() - t0 < 15


def test_wait_times_out_empty(redis_url):
    box = _box(redis_url)
    t0 = time.monotonic()
    assert box.for_agent("agent1").wait(timeout=0.5) == []
    assert 0.4 < time.monotonic() - t0 < 3


def test_log_keeps_everything_in_order_and_pairs_are_separate(redis_url):
    box = _box(redis_url)
    other = Mailbox(redis_url, box.prefix.split(":")[1], "repo_task/task1/f1-f3")
    a1, a2 = box.for_agent("agent1"), box.for_agent("agent2")
    a1.send("agent2", "one")
    a2.send("agent1", "two")
    a1.send("agent2", "three")
    other.for_agent("agent1").send("agent2", "elsewhere")
    a2.receive()
    log = box.log()
    assert [(m.seq, m.sender, m.body) for m in log] == [
        (1, "agent1", "one"),
        (2, "agent2", "two"),
        (3, "agent1", "three"),
    ]
    assert [m.body for m in other.log()] == ["elsewhere"]
    box.reset(["agent1", "agent2"])
    assert box.log() == [] and [m.body for m in other.log()] == ["elsewhere"]


def test_concurrent_senders_lose_nothing(redis_url):
    box = _box(redis_url)
    senders = [
        threading.Thread(target=lambda i=i: [box.send(f"s{i}", "agent2", f"{i}-{k}") for k in range(50)])
        for i in range(4)
    ]
    for t in senders:
        t.start()
    received = []
    deadline = time.monotonic() + 10
    while len(received) < 200 and time.monotonic() < deadline:
        received += box.wait("agent2", timeout=1)
    for t in senders:
        t.join()
    assert sorted(m.body for m in received) == sorted(f"{i}-{k}" for i in range(4) for k in range(50))
    assert [m.seq for m in box.log()] == list(range(1, 201))
