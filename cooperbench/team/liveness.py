"""Teammates' liveness: a running coop agent keeps a heartbeat in Redis and watches its teammates'.

While an agent of a coop pair runs, a thread of its worker refreshes the pair's key
`alive:<agent>` (holding the worker's `host:pid`; it expires after the heartbeat TTL,
the `heartbeat_ttl` setting, 30 s) every third of the TTL. When the run ends the harness
replaces it with `done:<agent>` and tells the teammates at once ("finished" notice). A
teammate that was seen running and now has neither key was **lost**: its worker died
(SIGKILL, a lost machine) or its run hit an infrastructure failure, and the farm will run
it again later. The watcher then puts a
notice into its own agent's inbox, which also ends a blocking wait for that teammate's
reply at once, remembers the loss for the pair's record, and says so again when the
teammate is running again.

Absence proves nothing when this agent's own heartbeat had vanished too (Redis restarted
without its data, or this process stalled for longer than the TTL): such a round judges
nobody, and the next one, with every heartbeat written again, does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import redis

from .. import settings
from .mailbox import TTL_SECONDS, Mailbox

log = logging.getLogger(__name__)


def alive_key(mailbox: Mailbox, agent: str) -> str:
    return mailbox.keys.alive(agent)


def heartbeat_ttl() -> float:
    return settings.get("heartbeat_ttl")


def lost_notice(agent: str) -> str:
    return (
        f"{agent} stopped unexpectedly, through a failure of the farm (not of its work). It will be started "
        "again from the beginning, in a fresh copy of the repository, with your earlier messages; until then "
        "it cannot answer. Go on with your own feature."
    )


def back_notice(agent: str) -> str:
    return f"{agent} is running again (started anew after it was lost); it can read your messages."


def finished_notice(agent: str) -> str:
    return f"{agent} has finished its work and will read no more messages."


class Watch:
    """One agent's heartbeat and its watch on its teammates, for the length of its run.

    `notify` (with messaging) puts the harness's notices into the agent's inbox; `lost`
    names the teammates that were lost at some point of the run.
    """

    def __init__(self, mailbox: Mailbox, agent: str, teammates: list[str], *, notify: bool, ttl: float | None = None):
        self.mailbox = mailbox
        self.agent = agent
        self.teammates = list(teammates)
        self.notify = notify
        self.ttl = ttl or heartbeat_ttl()
        self.lost: set[str] = set()
        self._seen: dict[str, str] = {}  # teammate -> "running" or "lost", as last judged
        self._judging = False  # from `together()` on: before, a teammate may leave to be re-queued
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{agent}", daemon=True)
        self._whoami = f"{socket.gethostname()}:{os.getpid()}"

    def start(self) -> Watch:
        """Alive (before the team can see this agent started), no longer done from an earlier attempt,
        and told which teammates have already finished (a resumed or restarted pair)."""
        self.mailbox.redis.delete(self.mailbox.done_key(self.agent))
        self.beat()
        for mate in self.teammates:
            if self.mailbox.finished(mate):
                self._tell(finished_notice(mate))
        self._thread.start()
        return self

    def together(self) -> None:
        """The team is together (every teammate started, heartbeat first): from now on a teammate
        with neither heartbeat nor done mark was lost. Before, one that left while waiting for the
        team (re-queued, to wait without a worker slot) was no loss, and is not recorded as one."""
        for mate in self.teammates:
            self._seen.setdefault(mate, "running")
        self._judging = True

    def stop(self, finished: bool) -> None:
        """End the heartbeat: `finished` runs are marked done (and teammates told); others just vanish (lost)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        m = self.mailbox
        try:
            reading = [mate for mate in self.teammates if finished and self.notify and not m.finished(mate)]
            with m.redis.pipeline(transaction=True) as p:  # done and told in one step
                p.delete(alive_key(m, self.agent))
                if finished:
                    p.set(m.done_key(self.agent), time.time(), ex=TTL_SECONDS)
                for mate in reading:
                    m.notify(mate, finished_notice(self.agent), pipe=p)
                p.execute()
        except redis.RedisError as exc:
            log.warning("cannot mark the end of %s in %s: %s", self.agent, m.prefix, exc)

    def beat(self) -> None:
        """Refresh this agent's heartbeat and judge the teammates' (one round)."""
        m = self.mailbox
        with m.redis.pipeline(transaction=False) as p:
            p.set(alive_key(m, self.agent), self._whoami, px=int(self.ttl * 1000), get=True)
            for mate in self.teammates:
                p.exists(alive_key(m, mate))
                p.exists(m.done_key(mate))
            mine, *states = p.execute()
        if mine is None or not self._judging:
            return  # our own heartbeat had vanished (absence proves nothing this round), or no team yet
        for i, mate in enumerate(self.teammates):
            alive, done = states[2 * i], states[2 * i + 1]
            before = self._seen.get(mate)
            if done:
                self._seen.pop(mate, None)
            elif alive:
                self._seen[mate] = "running"
                if before == "lost":
                    self._tell(back_notice(mate))
            elif before == "running":
                self._seen[mate] = "lost"
                self.lost.add(mate)
                log.warning("%s of %s was lost (no heartbeat)", mate, m.prefix)
                self._tell(lost_notice(mate))

    def _tell(self, text: str) -> None:
        if self.notify:
            self.mailbox.notify(self.agent, text)

    def _loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.beat()
            except redis.RedisError as exc:  # the agent's own Redis calls report the failure
                log.warning("heartbeat of %s in %s failed: %s", self.agent, self.mailbox.prefix, exc)
