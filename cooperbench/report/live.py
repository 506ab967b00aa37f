"""A running experiment's figures so far, for the progress line: passed, scored, infrastructure errors, cost."""

from __future__ import annotations

from ..statuses import PairStatus
from ..store import db
from .rows import agent_cost


def snapshot(database: str, experiment: str) -> dict:
    """What the experiment's rows say now (cheap enough to ask each time a pair finishes)."""
    pairs = db.query(database, db.PairRun, experiment=experiment)
    costs = [agent_cost(r) for r in db.query(database, db.AgentRun, experiment=experiment)]
    scored = [p for p in pairs if p.status == PairStatus.DONE]
    return {
        "scored": len(scored),
        "passed": sum(bool(p.both_passed) for p in scored),
        "infra_errors": sum(p.status == PairStatus.ERROR for p in pairs),
        "known_cost_usd": sum(c for c in costs if c is not None),
        "cost_unknown_agents": costs.count(None),
    }
