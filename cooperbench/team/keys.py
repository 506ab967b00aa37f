"""Every Redis key of a pair, named in one place: the mailbox's, the team start's and the heartbeats'.

Each key a pair uses follows from the experiment, the pair key and the agent ids, so a pair's
keys are deleted by name (`clear`), never found by SCAN: submitting stays as fast on a broker
holding millions of unrelated keys (Celery results, other experiments) as on an empty one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

BATCH = 5000  # keys per pipelined UNLINK round trip


def pair_prefix(experiment: str, pair: str) -> str:
    """The prefix of every Redis key of one pair of one experiment."""
    return f"cooperbench:{experiment}:{pair}"


def budget_key(experiment: str) -> str:
    """The experiment's cost budget (pair/budget.py): spending, reservations."""
    return f"cooperbench:{experiment}:budget"


@dataclass(frozen=True)
class PairKeys:
    """The names of one pair's keys (shared ones as attributes, per-agent ones as methods)."""

    experiment: str
    pair: str

    @property
    def prefix(self) -> str:
        return pair_prefix(self.experiment, self.pair)

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    # the mailbox (mailbox.py)
    @property
    def seq(self) -> str:
        return self.key("seq")

    @property
    def log(self) -> str:
        return self.key("log")

    def inbox(self, agent: str) -> str:
        return self.key(f"inbox:{agent}")

    # liveness (liveness.py)
    def alive(self, agent: str) -> str:
        return self.key(f"alive:{agent}")

    def done(self, agent: str) -> str:
        return self.key(f"done:{agent}")

    # the team start (start.py)
    @property
    def started(self) -> str:
        return self.key("started")

    @property
    def withdrawn(self) -> str:
        return self.key("withdrawn")

    def arrived(self, agent: str) -> str:
        return self.key(f"arrived:{agent}")

    # the submission in flight (farm/inflight.py): kept out of `all`, so resetting a pair's
    # mailbox never forgets that its tasks are queued or running
    @property
    def submitted(self) -> str:
        return self.key("submitted")

    def all(self, agents: Sequence[str]) -> list[str]:
        """Every key the pair may hold when its agents are `agents` (but its submission marker)."""
        per_agent = (self.inbox, self.alive, self.done, self.arrived)
        return [self.seq, self.log, self.started, self.withdrawn] + [f(a) for a in agents for f in per_agent]


def clear(client, pairs: Iterable[tuple[PairKeys, Sequence[str]]], batch: int = BATCH) -> int:
    """Delete every key of the given pairs (each with its agent ids) by name, in pipelined batches.

    Returns how many keys existed. UNLINK frees the memory in the background."""
    removed = 0
    names: list[str] = []

    def flush() -> int:
        if not names:
            return 0
        with client.pipeline(transaction=False) as p:
            for i in range(0, len(names), 500):
                p.unlink(*names[i : i + 500])
            got = sum(p.execute())
        names.clear()
        return got

    for keys, agents in pairs:
        names.extend(keys.all(agents))
        if len(names) >= batch:
            removed += flush()
    return removed + flush()
