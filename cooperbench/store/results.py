"""Reading results back: one record per pair (the `status --json` contract) and a summary table."""

from __future__ import annotations

from collections import defaultdict

from ..statuses import UNSCORED, ErrorKind, MergeStatus, PairStatus
from . import db


def record(row: db.PairRun, passed: dict[int, bool]) -> dict:
    """The stable per-pair record: repo, task_id, features, setting, merge_status, both_passed, ..."""
    return {
        "experiment": row.experiment,
        "repo": row.repo,
        "task_id": row.task_id,
        "features": sorted(int(f) for f in row.features.split(",")),
        "setting": row.setting,
        "status": row.status,
        "merge_status": row.merge_status,
        "merge_strategy": row.merge_strategy,
        "patch_status": row.patch_status or {},
        "feature_passed": {str(k): v for k, v in sorted(passed.items())},
        "both_passed": bool(row.both_passed),
        "clean_success": bool(row.clean_success),
        "error": row.error,
        "error_kind": row.error_kind,
        "disruption": row.disruption,
    }


def records(database: str, experiment: str) -> list[dict]:
    """Every pair's record, in two set-based reads (the evaluations read as three columns only)."""
    passed: dict[str, dict[int, bool]] = defaultdict(dict)
    for pair_id, feature, ok in db.columns(
        database, db.Evaluation, ("pair_id", "feature", "passed"), experiment=experiment
    ):
        passed[pair_id][feature] = ok
    rows = db.query(database, db.PairRun, experiment=experiment)
    return [record(r, passed[r.id]) for r in sorted(rows, key=lambda r: (r.repo, r.task_id, r.features))]


def totals(recs: list[dict]) -> dict:
    finished = [r for r in recs if r["status"] in (PairStatus.DONE, PairStatus.ERROR)]
    infra = [r for r in recs if r["error_kind"] == ErrorKind.INFRA]
    scored = [r for r in finished if r["error_kind"] not in UNSCORED]
    return {
        "pairs": len(recs),
        "finished": len(finished),
        "infra_errors": len(infra),
        "evaluation_errors": sum(r["error_kind"] == ErrorKind.EVALUATION for r in recs),
        "not_started": sum(r["status"] == PairStatus.SKIPPED for r in recs),
        "both_passed": sum(r["both_passed"] for r in scored),
        "clean_success": sum(r["clean_success"] for r in scored),
        "conflicts": sum(r["merge_status"] == MergeStatus.CONFLICTS for r in scored),
        "disrupted": sum(bool(r["disruption"]) for r in scored),
        "scored": len(scored),
    }


def table(recs: list[dict]) -> str:
    lines = [f"{'pair':44} {'merge':14} {'tests':10} {'both':5} {'clean':5} error"]
    for r in recs:
        key = f"{r['repo']}/task{r['task_id']}/" + "-".join(f"f{n}" for n in r["features"])
        tests = " ".join(("P" if v else "F") for v in r["feature_passed"].values()) or "-"
        merge = f"{r['merge_status'] or r['status']}" + (f"/{r['merge_strategy']}" if r["merge_strategy"] else "")
        err = (f"[{r['error_kind']}] " if r["error_kind"] else "") + (r["error"] or "")
        if r["disruption"]:
            err = f"[disrupted] {r['disruption']}" + (f"; {err}" if err else "")
        lines.append(
            f"{key:44} {merge:14} {tests:10} {'yes' if r['both_passed'] else 'no':5} "
            f"{'yes' if r['clean_success'] else 'no':5} {err[:80]}"
        )
    t = totals(recs)
    rate = lambda n: f"{n}/{t['scored']} ({100 * n / t['scored']:.0f}%)" if t["scored"] else "0/0"
    lines.append("")
    lines.append(
        f"pairs: {t['pairs']}  finished: {t['finished']}  both passed: {rate(t['both_passed'])}  "
        f"clean success: {rate(t['clean_success'])}  conflicts: {t['conflicts']}  "
        f"infrastructure errors: {t['infra_errors']}"
    )
    if t["evaluation_errors"]:
        lines.append(
            f"evaluation errors: {t['evaluation_errors']} pair(s) not graded, as a test runner failed before "
            "running any test (not scored; their `error` says which)"
        )
    if t["disrupted"]:
        lines.append(
            f"team disrupted: {t['disrupted']} scored pair(s) whose teammates did not run together "
            "throughout (their `disruption` says why)"
        )
    if t["not_started"]:
        lines.append(
            f"not started: {t['not_started']} pair(s), as the cost cap or the time limit was reached "
            "(raise --max-cost or --time-limit and run again)"
        )
    return "\n".join(lines)
