"""One experiment's summary, and the comparison of experiments on the same pairs, as JSON-ready dicts.

Denominators are stated, never implied: a pass rate is over the *scored* pairs (status done:
agent and input errors count as failures), and the pairs left out (infrastructure errors,
skipped as not started, unfinished) are counted beside it. Comparisons use only the pairs
scored in both experiments; pairs in one experiment only, or scored in one only, are listed.
"""

from __future__ import annotations

import pandas as pd

from ..statuses import AgentStatus, ErrorKind, MergeOutcome, PairStatus
from .rows import Rows
from .stats import Estimate, clustered_mean, mcnemar, naive_mean


def rate(frame: pd.DataFrame, column: str) -> dict:
    """Successes over scored pairs, with the clustered interval (and the naive one, for reference)."""
    scored = frame[frame["scored"]]
    values = scored[column].astype(float).to_numpy()
    return {
        "passed": int(values.sum()),
        "scored": int(len(values)),
        "estimate": clustered_mean(values, scored["task"].to_numpy()).to_json(),
        "naive": naive_mean(values).to_json(),
    }


def denominator(frame: pd.DataFrame) -> dict:
    status = frame["status"]
    scored = frame[frame["scored"]]
    # unscored errors, by whose they are: the farm's, or a test runner that never ran a test
    errors, ungraded = status == PairStatus.ERROR, frame["error_kind"] == ErrorKind.EVALUATION
    return {
        "pairs": int(len(frame)),
        "scored": int(len(scored)),
        "infra_errors": int((errors & ~ungraded).sum()),
        "evaluation_errors": int((errors & ungraded).sum()),
        "skipped": int((status == PairStatus.SKIPPED).sum()),
        "unfinished": int((status == PairStatus.QUEUED).sum()),
        "scored_agent_errors": int((scored["error_kind"] == ErrorKind.AGENT).sum()),
        "scored_input_errors": int((scored["error_kind"] == ErrorKind.INPUT).sum()),
        "disrupted": int(scored["disruption"].notna().sum()),
    }


def merges(frame: pd.DataFrame) -> dict:
    scored = frame[frame["scored"]]
    counts = {o.value: int((scored["merge_outcome"] == o).sum()) for o in MergeOutcome}
    merged = counts[MergeOutcome.CLEAN] + counts[MergeOutcome.RESCUED] + counts[MergeOutcome.CONFLICTS]
    conflicted = counts[MergeOutcome.RESCUED] + counts[MergeOutcome.CONFLICTS]
    return {
        "outcomes": counts,
        "conflict_rate": conflicted / merged if merged else None,  # naive merge conflicted, of pairs merged
        "rescue_rate": counts[MergeOutcome.RESCUED] / conflicted if conflicted else None,  # union rescued, of those
    }


def communication(frame: pd.DataFrame, agents: pd.DataFrame) -> dict | None:
    """Over the scored coop pairs: messages per pair, pairs where nobody wrote, share of steps spent messaging."""
    ran = frame[frame["scored"] & (frame["setting"] == "coop")]
    if ran.empty:
        return None
    steps = int(ran["steps"].sum())
    return {
        "pairs": int(len(ran)),
        "messages": int(ran["messages"].sum()),
        "messages_per_pair_mean": float(ran["messages"].mean()),
        "messages_per_pair_median": float(ran["messages"].median()),
        "silent_pairs": int((ran["messages"] == 0).sum()),
        "message_step_share": ran["message_steps"].sum() / steps if steps else None,
    }


def costs(frame: pd.DataFrame, agents: pd.DataFrame) -> dict:
    known = agents[agents["cost_known"]]
    pairs_known = frame[frame["cost_unknown_agents"] == 0]
    wall = frame["wall_seconds"].dropna()
    return {
        "known_cost_usd": float(known["cost_usd"].sum()),
        "agents": int(len(agents)),
        "agents_cost_unknown": int((~agents["cost_known"]).sum()),
        "pairs_cost_unknown": int((frame["cost_unknown_agents"] > 0).sum()),
        "cost_per_pair_mean_usd": float(pairs_known["cost_usd"].mean()) if len(pairs_known) else None,
        "input_tokens": int(agents["input_tokens"].sum()),
        "output_tokens": int(agents["output_tokens"].sum()),
        "tokens_per_pair_mean": float((frame["input_tokens"] + frame["output_tokens"]).mean()) if len(frame) else None,
        "agent_seconds": float(agents["seconds"].sum()),
        "wall_seconds_per_pair_mean": float(wall.mean()) if len(wall) else None,
    }


def _groups(frame: pd.DataFrame, by: str) -> list[dict]:
    out = []
    for key, group in frame.groupby(by, sort=True):
        d = denominator(group)
        scored = group[group["scored"]]
        values = scored["both_passed"].astype(float).to_numpy()
        est = clustered_mean(values, scored["task"].to_numpy())  # one task: no interval (its pairs move together)
        out.append(
            {
                by: key,
                **d,
                "both_passed": int(scored["both_passed"].sum()),
                "clean_success": int(scored["clean_success"].sum()),
                "estimate": est.to_json(),
            }
        )
    return out


def summarize(rows: Rows, name: str) -> dict:
    """Everything the report says about one experiment."""
    frame = rows.pairs[rows.pairs["experiment"] == name]
    agents = rows.agents[rows.agents["experiment"] == name]
    exp = rows.experiments[name]
    return {
        "experiment": name,
        "setting": exp.setting,
        "agent": exp.agent,
        "model": exp.model,
        "denominator": denominator(frame),
        "both_passed": rate(frame, "both_passed"),
        "clean_success": rate(frame, "clean_success"),
        "per_repo": _groups(frame, "repo"),
        "per_task": _groups(frame, "task"),
        "merge": merges(frame),
        "agent_statuses": {str(s): int((agents["status"] == s).sum()) for s in AgentStatus}
        | {str(s): int(n) for s, n in agents["status"].value_counts().items() if s not in set(AgentStatus)},
        "communication": communication(frame, agents),
        "cost": costs(frame, agents),
    }


def _paired(a: pd.DataFrame, b: pd.DataFrame, column: str) -> dict:
    diff = a[column].astype(float).to_numpy() - b[column].astype(float).to_numpy()
    est: Estimate = clustered_mean(diff, a["task"].to_numpy())
    return {"estimate": est.to_json(), "naive": naive_mean(diff).to_json()}


def _counts(a: pd.DataFrame, b: pd.DataFrame, column: str) -> dict:
    x, y = a[column].to_numpy(bool), b[column].to_numpy(bool)
    counts = {
        "both": int((x & y).sum()),
        "only_a": int((x & ~y).sum()),
        "only_b": int((~x & y).sum()),
        "neither": int((~x & ~y).sum()),
    }
    return {**counts, "mcnemar_p": mcnemar(counts["only_a"], counts["only_b"])}


def compare(rows: Rows, a: str, b: str) -> dict:
    """Experiment `a` against `b` on the pairs scored in both: a − b, clustered by task."""
    pa = rows.pairs[rows.pairs["experiment"] == a].set_index("pair")
    pb = rows.pairs[rows.pairs["experiment"] == b].set_index("pair")
    common = sorted(set(pa.index) & set(pb.index))
    comparable = [k for k in common if pa.at[k, "scored"] and pb.at[k, "scored"]]
    left_out = [
        {"pair": k, "status_a": str(pa.at[k, "status"]), "status_b": str(pb.at[k, "status"])}
        for k in common
        if k not in comparable
    ]
    ca, cb = pa.loc[comparable].reset_index(), pb.loc[comparable].reset_index()
    per_repo = []
    for repo in sorted(set(ca["repo"])):
        ra, rb = ca[ca["repo"] == repo], cb[ca["repo"] == repo]
        per_repo.append(
            {
                "repo": repo,
                "pairs": int(len(ra)),
                "rate_a": float(ra["both_passed"].mean()),
                "rate_b": float(rb["both_passed"].mean()),
                "difference": _paired(ra, rb, "both_passed"),
                "counts": _counts(ra, rb, "both_passed"),
            }
        )
    return {
        "a": a,
        "b": b,
        "pairs": len(comparable),
        "tasks": int(ca["task"].nunique()) if comparable else 0,
        "rate_a": float(ca["both_passed"].mean()) if comparable else None,
        "rate_b": float(cb["both_passed"].mean()) if comparable else None,
        "both_passed": {**_paired(ca, cb, "both_passed"), "counts": _counts(ca, cb, "both_passed")},
        "clean_success": {**_paired(ca, cb, "clean_success"), "counts": _counts(ca, cb, "clean_success")},
        "per_repo": per_repo,
        "only_in_a": sorted(set(pa.index) - set(pb.index)),
        "only_in_b": sorted(set(pb.index) - set(pa.index)),
        "not_scored_in_both": left_out,
    }


def report(rows: Rows, names: list[str]) -> dict:
    """The summaries of every named experiment, and the first compared with each of the others."""
    return {
        "experiments": [summarize(rows, n) for n in names],
        "comparisons": [compare(rows, names[0], other) for other in names[1:]],
    }
