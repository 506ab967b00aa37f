"""A pair's second step: merge and test its agents' recorded patches, and record the pair's rows.

The Celery evaluation task calls `evaluate_pair`; so do `cooperbench eval` and the tests. It
never raises for anything inside the pair: a skipped agent makes the pair `skipped`, bad input
an `input` error, a failure of the evaluation itself an `infra` error (retried, never scored).
"""

from __future__ import annotations

import logging

from ..agents.llm_client import redact, secrets
from ..data.dataset import Pair
from ..environments.prepared import EnvironmentUnavailable
from ..environments.prepared import ensure as ensure_environment
from ..errors import UserError
from ..experiment import ExperimentSpec, agent_run_id, pair_id
from ..grading.merge_and_test import EvalOutcome, merge_and_test
from ..settings import db_url
from ..statuses import NOT_FINAL, AgentStatus, ErrorKind, MergeStatus, PairStatus, PatchState
from ..store import db
from ..store.artifacts import PairPaths
from ..store.backends import StoreError, open_store
from ..store.results import record
from ..team.mailbox import Mailbox
from .abandon import ABANDONED

log = logging.getLogger(__name__)


def disruption(spec: ExperimentSpec, runs: dict[str, db.AgentRun | None]) -> str | None:
    """Why the team of a coop pair did not work together throughout, or None.

    A teammate was lost mid-run (its heartbeat stopped: see `team.liveness`), or an agent's run
    began after a teammate's had ended (it was started again after its worker died, or
    resumed by a later `run`), so it worked without a live teammate.
    """
    if len(runs) < 2 or not (spec.messaging or spec.git):
        return None
    ran = {a: r for a, r in runs.items() if r is not None and r.status not in NOT_FINAL}
    reasons = [
        f"{a} lost {', '.join(r.usage['teammates_lost'])} mid-run"
        for a, r in ran.items()
        if (r.usage or {}).get("teammates_lost")
    ]
    reasons += [
        f"{a} started after {b} had finished"
        for a, r in ran.items()
        for b, other in ran.items()
        if a != b and r.started_at and other.finished_at and r.started_at > other.finished_at
    ]
    return "; ".join(reasons) or None


def _outcome(spec: ExperimentSpec, pair: Pair, runs: dict[str, db.AgentRun | None]) -> EvalOutcome:
    """Merge and test the patches of the pair's agent runs, or say why that cannot be done."""
    patches = {a: (r.patch if r is not None and r.status not in NOT_FINAL else None) for a, r in runs.items()}
    lost = [f"{a}: {r.error}" for a, r in runs.items() if r is not None and r.status == AgentStatus.INFRA_ERROR]
    skipped = [f"{a}: {r.error}" for a, r in runs.items() if r is not None and r.status == AgentStatus.SKIPPED]
    bad_input = [
        f"{a}: {r.error}" for a, r in runs.items() if r is not None and (r.error or "").startswith("bad input")
    ]
    if skipped:
        return EvalOutcome(MergeStatus.MISSING_INPUT, None, {}, [], "; ".join(skipped), ErrorKind.BUDGET)
    if bad_input:
        return EvalOutcome(MergeStatus.ERROR, None, {}, [], "; ".join(bad_input), ErrorKind.INPUT)
    if lost:  # no patch to grade: say why, so an unpreparable task or a broken engine is named
        return EvalOutcome(
            MergeStatus.MISSING_INPUT,
            None,
            {a: PatchState.MISSING for a, r in runs.items() if r is not None and r.status == AgentStatus.INFRA_ERROR},
            [],
            "no patch from " + "; ".join(lost),
            ErrorKind.INFRA,
        )
    try:
        task = spec.task(pair.repo, pair.task_id)
        outcome = merge_and_test(
            task,
            list(pair.features),
            patches,
            spec.sandbox_backend(),
            labels={"experiment": spec.name, "pair": pair.key, "agent": "eval"},
            test_timeout=spec.test_timeout,
            environment=ensure_environment(task, spec.backend),
        )
    except UserError as exc:
        return EvalOutcome(MergeStatus.ERROR, None, {}, [], f"bad input: {exc}", ErrorKind.INPUT)
    except EnvironmentUnavailable as exc:
        return EvalOutcome(MergeStatus.ERROR, None, {}, [], str(exc), ErrorKind.INFRA)
    except Exception as exc:
        log.warning("evaluation of %s failed: %s", pair.key, exc)
        return EvalOutcome(
            MergeStatus.ERROR, None, {}, [], f"evaluation failed: {type(exc).__name__}: {exc}", ErrorKind.INFRA
        )
    hidden = secrets()
    for feature in outcome.features:  # test output can print whatever agent code found: never store a key
        feature.output = redact(feature.output, hidden)
    if outcome.error_kind is None:
        failed_agents = [f"{a}: {r.status}: {r.error}" for a, r in runs.items() if r and r.status == AgentStatus.ERROR]
        if failed_agents:
            outcome.error, outcome.error_kind = "; ".join(failed_agents), ErrorKind.AGENT
    return outcome


def evaluate_pair(spec: ExperimentSpec, pair: Pair, mailbox_url: str | None, database: str | None = None) -> dict:
    """Merge and test the pair's recorded patches; record the PairRun, Evaluation and message rows."""
    database = db_url(database)
    runs = {a: db.get(database, db.AgentRun, agent_run_id(spec.name, pair, a)) for a, _ in spec.agents(pair)}
    outcome = _outcome(spec, pair, runs)
    if ABANDONED.is_set():
        return {}

    try:
        return _record(spec, pair, runs, outcome, mailbox_url, database, open_store(spec.logs))
    except StoreError as exc:  # the artifacts could not be kept: an infrastructure error, retried
        log.warning("cannot keep the artifacts of %s: %s", pair.key, exc)
        outcome = EvalOutcome(MergeStatus.ERROR, None, {}, [], f"artifact store: {exc}", ErrorKind.INFRA)
        return _record(spec, pair, runs, outcome, mailbox_url, database, None)


def _record(spec, pair, runs, outcome: EvalOutcome, mailbox_url, database: str, store) -> dict:
    """Write the pair's artifacts (unless `store` is None) and rows; the PairRun row last."""
    pid = pair_id(spec.name, pair)
    paths = PairPaths.of(spec.name, pair.key)
    rows: list = []
    for f in outcome.features:
        rows.append(
            db.Evaluation(
                id=f"{pid}|{f.feature}",
                experiment=spec.name,
                pair_id=pid,
                feature=f.feature,
                passed=f.passed,
                exit_code=f.exit_code,
                tests_passed=f.tests_passed,
                tests_failed=f.tests_failed,
                framework=f.framework,
                duration=f.duration,
                timed_out=f.timed_out,
                log_path=store.put_text(paths.eval_log(f.feature), f.output),
            )
        )
    messages = Mailbox(mailbox_url, spec.name, pair.key).log() if mailbox_url and spec.setting == "coop" else []
    for m in messages:
        rows.append(
            db.MessageRow(
                id=f"{pid}|{m.seq}",
                experiment=spec.name,
                pair_id=pid,
                seq=m.seq,
                sender=m.sender,
                recipient=m.recipient,
                body=m.body,
                sent_at=m.sent_at,
            )
        )
    if messages and store is not None:
        store.put_json(paths.messages, [m.__dict__ for m in messages])
    pair_row = db.PairRun(
        id=pid,
        experiment=spec.name,
        repo=pair.repo,
        task_id=pair.task_id,
        features=",".join(map(str, pair.features)),
        setting=spec.setting,
        status=PairStatus.after(outcome.error_kind),
        merge_status=outcome.merge_status,
        merge_strategy=outcome.merge_strategy,
        patch_status=outcome.patch_status,
        both_passed=outcome.both_passed,
        clean_success=outcome.clean_success,
        error=outcome.error,
        error_kind=outcome.error_kind,
        disruption=disruption(spec, runs),
        finished_at=db.now(),
    )
    existing = db.get(database, db.PairRun, pid)
    if existing is not None:
        pair_row.submitted_at = existing.submitted_at
    data = record(pair_row, {e.feature: e.passed for e in rows if isinstance(e, db.Evaluation)})
    if store is not None:
        store.put_json(paths.result, data)
    db.upsert(database, *rows, pair_row)
    return data
