"""The experiment's budget: its cost cap (`--max-cost`) and its time limit (`--time-limit`).

An agent checks the budget before it starts; once it is spent, no new agent of the
experiment starts (it is recorded `Skipped`, and a later run does it).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ..experiment import ExperimentSpec
from ..store import db


def paid(usage: dict | None) -> float:
    """The known cost in USD an AgentRun's usage records: its run's and its earlier, failed attempts'."""
    usage = usage or {}
    return (usage.get("cost_usd") or 0.0) + (usage.get("earlier_attempts_cost_usd") or 0.0)


def spent(database: str, experiment: str) -> float:
    """The known cost in USD of every agent run of the experiment so far."""
    return sum(paid(usage) for (usage,) in db.columns(database, db.AgentRun, ("usage",), experiment=experiment))


def budget_spent(spec: ExperimentSpec, database: str) -> str | None:
    """Why no new agent of the experiment may start (its cost cap or time limit is spent), or None."""
    if spec.deadline is not None and time.time() >= spec.deadline:
        ended = datetime.fromtimestamp(spec.deadline, UTC).isoformat(timespec="seconds")
        return f"the experiment's time limit passed at {ended}"
    if spec.max_cost is not None and (cost := spent(database, spec.name)) >= spec.max_cost:
        return f"the experiment's cost cap (${spec.max_cost:g}) is reached (${cost:.4f} spent)"
    return None
