"""The teammates' mailbox: one Redis channel per pair, namespaced by experiment and pair.

Each agent has an inbox (a Redis list): `send` appends to the recipient's inbox, so a
message waits there however late the recipient starts; `receive` takes what is waiting;
`wait` blocks on the inbox (BLPOP) until a message arrives or the timeout passes. Every
message is also appended, with a sequence number, sender, recipient and time, to the
pair's log, which is stored with the pair's results; `replay` rebuilds an agent's inbox
from that log, so an agent that starts again (its worker died) reads the conversation
from the beginning. The harness itself puts notices (sender `FARM`, never in the log)
into an inbox, e.g. that a teammate has finished or was lost (see `liveness`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import redis

from .keys import PairKeys, clear

TTL_SECONDS = 14 * 24 * 3600
FARM = "cooperbench"  # the sender of the harness's own notices


def connect(url: str) -> redis.Redis:
    """A client for blocking reads: no read time-out (redis-py's default of 5 s would cut a long
    BLPOP short), a bounded connect, and keepalive plus health checks to notice a dead server."""
    return redis.Redis.from_url(
        url, socket_timeout=None, socket_connect_timeout=10, socket_keepalive=True, health_check_interval=30
    )


@dataclass(frozen=True)
class Message:
    seq: int
    sender: str
    recipient: str
    body: str
    sent_at: float

    @property
    def from_farm(self) -> bool:
        return self.sender == FARM


class Mailbox:
    """The mailbox of one pair; `for_agent` gives an agent its own view."""

    def __init__(self, url: str, experiment: str, pair: str):
        self.redis = connect(url)
        self.keys = PairKeys(experiment, pair)
        self.prefix = self.keys.prefix

    def key(self, name: str) -> str:
        return self.keys.key(name)

    def _inbox(self, agent: str) -> str:
        return self.keys.inbox(agent)

    def send(self, sender: str, recipient: str, body: str) -> Message:
        seq = int(self.redis.incr(self.keys.seq))
        msg = Message(seq, sender, recipient, body, time.time())
        data = json.dumps(asdict(msg))
        with self.redis.pipeline(transaction=True) as p:
            p.rpush(self._inbox(recipient), data)
            p.rpush(self.keys.log, data)
            for key in (self._inbox(recipient), self.keys.log, self.keys.seq):
                p.expire(key, TTL_SECONDS)
            p.execute()
        return msg

    def notify(self, recipient: str, body: str, pipe=None) -> None:
        """Put a notice of the harness's into an agent's inbox (it wakes a waiting agent; it is not logged).

        With `pipe` (a Redis pipeline) it is queued there, to go with the pipeline's other writes."""
        data = json.dumps(asdict(Message(0, FARM, recipient, body, time.time())))
        p = pipe if pipe is not None else self.redis.pipeline(transaction=True)
        p.rpush(self._inbox(recipient), data)
        p.expire(self._inbox(recipient), TTL_SECONDS)
        if pipe is None:
            p.execute()

    def replay(self, agent: str) -> None:
        """Make the agent's inbox hold every message ever sent to it, as the log has them.

        On an agent's first start that is what its inbox holds anyway; an agent started
        again (its worker died, or an infrastructure failure was retried) has read nothing
        of it in its new run. Done atomically against concurrent sends (WATCH on the log).
        """
        inbox, log_key = self._inbox(agent), self.keys.log

        def refill(pipe) -> None:
            mine = [i for i in pipe.lrange(log_key, 0, -1) if json.loads(i)["recipient"] == agent]
            pipe.multi()
            pipe.delete(inbox)
            if mine:
                pipe.rpush(inbox, *mine)
                pipe.expire(inbox, TTL_SECONDS)

        self.redis.transaction(refill, log_key)

    def done_key(self, agent: str) -> str:
        """The key that marks the agent's run as ended (written by `liveness`)."""
        return self.keys.done(agent)

    def finished(self, agent: str) -> bool:
        """Whether the agent's run has ended."""
        return bool(self.redis.exists(self.done_key(agent)))

    def receive(self, agent: str) -> list[Message]:
        """Everything waiting in the agent's inbox, oldest first (does not block)."""
        with self.redis.pipeline(transaction=True) as p:
            p.lrange(self._inbox(agent), 0, -1)
            p.delete(self._inbox(agent))
            items, _ = p.execute()
        return [Message(**json.loads(i)) for i in items]

    def wait(self, agent: str, timeout: float) -> list[Message]:
        """Block until at least one message arrives (or `timeout` seconds pass); return all waiting."""
        got = self.redis.blpop([self._inbox(agent)], timeout=max(timeout, 0.01))
        if got is None:
            return []
        return [Message(**json.loads(got[1]))] + self.receive(agent)

    def log(self) -> list[Message]:
        """Every message sent in this pair, in order."""
        items = [Message(**json.loads(i)) for i in self.redis.lrange(self.keys.log, 0, -1)]
        return sorted(items, key=lambda m: m.seq)

    def reset(self, agents: list[str]) -> None:
        """Delete every key of the pair (its agents named), by name: the mailbox, the team start, liveness."""
        clear(self.redis, [(self.keys, agents)])

    def for_agent(self, agent: str) -> AgentMailbox:
        return AgentMailbox(self, agent)


class AgentMailbox:
    """One agent's side of the mailbox."""

    def __init__(self, mailbox: Mailbox, agent: str):
        self.mailbox = mailbox
        self.agent = agent

    def send(self, recipient: str, body: str) -> Message:
        return self.mailbox.send(self.agent, recipient, body)

    def receive(self) -> list[Message]:
        return self.mailbox.receive(self.agent)

    def wait(self, timeout: float) -> list[Message]:
        return self.mailbox.wait(self.agent, timeout)

    def finished(self, teammate: str) -> bool:
        return self.mailbox.finished(teammate)
