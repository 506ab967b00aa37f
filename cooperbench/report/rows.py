"""The stored rows of experiments as two tables with stable, documented columns: one row per pair, one per agent run.

These tables are what the statistics read and what `cooperbench report --format csv|json|parquet`
writes. Columns are only ever added, never renamed; `PAIR_COLUMNS` and `AGENT_COLUMNS` document each.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import pandas as pd

from ..errors import UserError
from ..grading.merge_and_test import UNION_FAILED
from ..statuses import AgentStatus, MergeOutcome, MergeStatus, PairStatus, PatchState
from ..store import db

PAIR_COLUMNS = {
    "experiment": "experiment name",
    "pair": "pair key, <repo>/task<id>/f<a>-f<b> (the same pair in two experiments has the same key)",
    "repo": "repository folder of the dataset",
    "task_id": "task id within the repository",
    "task": "<repo>/task<id>: the cluster of the bootstrap",
    "features": "the pair's features, e.g. '1,2'",
    "setting": "coop or solo",
    "agent": "agent name",
    "model": "model of LLM agents (empty otherwise)",
    "status": (
        "pair status: queued (unfinished), done (scored), error (an infrastructure or evaluation error: "
        "not scored), skipped (not started)"
    ),
    "scored": "true when the pair counts in the pass rates (status done)",
    "both_passed": "both features' tests passed on the merged tree (union merge allowed); false when not scored",
    "clean_success": "both passed and the naive merge was clean",
    "merge_status": "clean, conflicts, missing_input or error (as stored)",
    "merge_strategy": "naive or union (as stored)",
    "merge_outcome": "clean, rescued (by the union merge), conflicts (left), not_applied, missing_input, error",
    "features_passed": "how many of the pair's features passed",
    "tests_passed": "tests passed, over both features",
    "tests_failed": "tests failed, over both features",
    "error_kind": "infra, agent, input or budget (empty without error)",
    "error": "the error, if any",
    "disruption": "why the team did not run together throughout (empty when it did)",
    "messages": "messages the teammates exchanged",
    "steps": "steps of all the pair's agents",
    "message_steps": "steps spent sending messages",
    "input_tokens": "model input tokens of all the pair's agents",
    "output_tokens": "model output tokens of all the pair's agents",
    "cost_usd": "known cost in USD (earlier failed attempts included); empty when any agent's cost is unknown",
    "cost_unknown_agents": "agents of the pair whose cost is unknown (a model with no known price, or none reported)",
    "agent_seconds": "wall time of all the pair's agent runs, added up",
    "wall_seconds": "from the first agent's start to the last agent's end",
}

AGENT_COLUMNS = {
    "experiment": "experiment name",
    "pair": "pair key (as in the pair rows)",
    "repo": "repository folder",
    "task_id": "task id",
    "task": "<repo>/task<id>",
    "features": "the pair's features",
    "agent_id": "agent1, agent2 (coop) or solo",
    "agent_features": "the features this agent was given",
    "agent": "agent name",
    "model": "model (empty for agents without one)",
    "status": "Submitted, LimitsExceeded, Error, InfraError or Skipped",
    "error": "the agent's error, if any",
    "steps": "steps taken",
    "message_steps": "steps spent sending messages",
    "messages_sent": "messages sent to teammates",
    "messages_received": "messages received from teammates",
    "input_tokens": "model input tokens",
    "output_tokens": "model output tokens",
    "cost_usd": "known cost in USD, earlier failed attempts included; empty when unknown",
    "cost_known": "false when the model's price is unknown or the agent reported no cost",
    "earlier_attempts_cost_usd": "what failed earlier attempts of this run cost",
    "seconds": "wall time of the run",
    "started_at": "start time (UTC)",
    "finished_at": "end time (UTC)",
    "patch_lines": "lines of the captured patch",
}


@dataclass
class Rows:
    pairs: pd.DataFrame  # PAIR_COLUMNS
    agents: pd.DataFrame  # AGENT_COLUMNS
    experiments: dict[str, db.Experiment]


def merge_outcome(row: db.PairRun) -> MergeOutcome | None:
    """What became of a scored pair's patches; None for a pair that was not scored."""
    if row.status != PairStatus.DONE:
        return None
    if row.merge_status == MergeStatus.CLEAN:
        return MergeOutcome.CLEAN
    if row.merge_status == MergeStatus.CONFLICTS:
        return MergeOutcome.CONFLICTS if row.error == UNION_FAILED else MergeOutcome.RESCUED
    if row.merge_status == MergeStatus.MISSING_INPUT:
        return MergeOutcome.MISSING_INPUT
    if PatchState.FAILED in (row.patch_status or {}).values():
        return MergeOutcome.NOT_APPLIED
    return MergeOutcome.ERROR


def agent_cost(run: db.AgentRun) -> float | None:
    """The agent run's known cost in USD (earlier attempts included), or None when unknown.

    A run that never started (Skipped) cost nothing; a run whose agent reported no cost, or whose
    model has no known price, is unknown: it is flagged, never counted as zero."""
    usage = run.usage or {}
    earlier = usage.get("earlier_attempts_cost_usd") or 0.0
    if run.status == AgentStatus.SKIPPED and "cost_usd" not in usage:
        return earlier
    cost = usage.get("cost_usd")
    if cost is None or usage.get("cost_known") is False:
        return None
    return float(cost) + earlier


def _message_steps(run: db.AgentRun) -> int:
    usage = run.usage or {}
    return int(usage["message_steps"]) if "message_steps" in usage else run.messages_sent


def load(database: str, experiments: list[str]) -> Rows:
    """The pair and agent rows of the named experiments (bad names are a UserError)."""
    found: dict[str, db.Experiment] = {}
    for name in experiments:
        exp = db.get(database, db.Experiment, name)
        if exp is None:
            raise UserError(f"no experiment named {name!r}")
        found[name] = exp
    pair_rows, agent_rows = [], []
    for name, exp in found.items():
        runs = db.query(database, db.AgentRun, experiment=name)
        evals = db.query(database, db.Evaluation, experiment=name)
        messages = Counter(m.pair_id for m in db.query(database, db.MessageRow, experiment=name))
        runs_of: dict[str, list[db.AgentRun]] = defaultdict(list)
        for r in runs:
            runs_of[r.pair_id].append(r)
        evals_of: dict[str, list[db.Evaluation]] = defaultdict(list)
        for e in evals:
            evals_of[e.pair_id].append(e)
        for p in sorted(db.query(database, db.PairRun, experiment=name), key=lambda r: r.id):
            key = p.id.split("|", 1)[1]
            task = f"{p.repo}/task{p.task_id}"
            base = {"experiment": name, "pair": key, "repo": p.repo, "task_id": p.task_id, "task": task}
            agents = sorted(runs_of[p.id], key=lambda r: r.agent_id)
            costs = [agent_cost(r) for r in agents]
            started = [r.started_at for r in agents if r.started_at]
            finished = [r.finished_at for r in agents if r.finished_at]
            usage = [r.usage or {} for r in agents]
            scored = p.status == PairStatus.DONE
            pair_rows.append(
                {
                    **base,
                    "features": p.features,
                    "setting": p.setting,
                    "agent": exp.agent,
                    "model": exp.model or "",
                    "status": p.status,
                    "scored": scored,
                    "both_passed": bool(p.both_passed) and scored,
                    "clean_success": bool(p.clean_success) and scored,
                    "merge_status": p.merge_status,
                    "merge_strategy": p.merge_strategy,
                    "merge_outcome": merge_outcome(p),
                    "features_passed": sum(e.passed for e in evals_of[p.id]),
                    "tests_passed": sum(e.tests_passed for e in evals_of[p.id]),
                    "tests_failed": sum(e.tests_failed for e in evals_of[p.id]),
                    "error_kind": p.error_kind,
                    "error": p.error,
                    "disruption": p.disruption,
                    "messages": messages[p.id],
                    "steps": sum(r.steps for r in agents),
                    "message_steps": sum(_message_steps(r) for r in agents),
                    "input_tokens": sum(int(u.get("input_tokens") or 0) for u in usage),
                    "output_tokens": sum(int(u.get("output_tokens") or 0) for u in usage),
                    "cost_usd": None if None in costs else float(sum(costs)),
                    "cost_unknown_agents": costs.count(None),
                    "agent_seconds": float(sum(r.duration for r in agents)),
                    "wall_seconds": (max(finished) - min(started)).total_seconds() if started and finished else None,
                }
            )
            for r, cost, u in zip(agents, costs, usage, strict=True):
                agent_rows.append(
                    {
                        **base,
                        "features": p.features,
                        "agent_id": r.agent_id,
                        "agent_features": r.features,
                        "agent": r.agent,
                        "model": r.model or "",
                        "status": r.status,
                        "error": r.error,
                        "steps": r.steps,
                        "message_steps": _message_steps(r),
                        "messages_sent": r.messages_sent,
                        "messages_received": r.messages_received,
                        "input_tokens": int(u.get("input_tokens") or 0),
                        "output_tokens": int(u.get("output_tokens") or 0),
                        "cost_usd": cost,
                        "cost_known": cost is not None,
                        "earlier_attempts_cost_usd": float(u.get("earlier_attempts_cost_usd") or 0.0),
                        "seconds": float(r.duration),
                        "started_at": r.started_at,
                        "finished_at": r.finished_at,
                        "patch_lines": len((r.patch or "").splitlines()),
                    }
                )
    pairs = pd.DataFrame(pair_rows, columns=list(PAIR_COLUMNS))
    agents = pd.DataFrame(agent_rows, columns=list(AGENT_COLUMNS))
    for frame, col in ((pairs, "cost_usd"), (agents, "cost_usd"), (pairs, "wall_seconds")):
        frame[col] = frame[col].astype("float64")
    for frame, col in ((pairs, "scored"), (pairs, "both_passed"), (pairs, "clean_success"), (agents, "cost_known")):
        frame[col] = frame[col].astype(bool)  # also when empty, so a mask stays a mask
    for frame, cols in ((pairs, ("messages", "steps", "message_steps", "input_tokens", "output_tokens")),
                        (agents, ("steps", "input_tokens", "output_tokens"))):  # fmt: skip
        for col in cols:
            frame[col] = frame[col].astype("int64")
    return Rows(pairs, agents, found)
