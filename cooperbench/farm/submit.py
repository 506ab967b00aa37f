"""Submitting an experiment: which pairs still need work, one Celery chord per pair, and waiting.

Each coop pair is `chord([agent task per feature], evaluate task)`; a solo pair is a chord
of one agent task. Pairs already done are left alone (unless forced), so running the same
experiment again resumes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from celery import chord

from ..data.dataset import Pair
from ..errors import UserError
from ..experiment import COMPARED, ExperimentSpec, agent_run_id, pair_id
from ..statuses import NOT_FINAL, ErrorKind, PairStatus
from ..store import db
from ..store.results import records
from ..team import remote as shared_remote
from ..team.mailbox import Mailbox
from .tasks import AGENT_TASK, EVALUATE_TASK


def register(spec: ExperimentSpec, database: str) -> None:
    """Create the experiment row, or check that an existing one has the same settings."""
    row = db.get(database, db.Experiment, spec.name)
    if row is None:
        db.upsert(
            database,
            db.Experiment(
                name=spec.name,
                setting=spec.setting,
                agent=spec.agent,
                model=spec.model,
                backend=spec.backend,
                git=spec.git,
                messaging=spec.messaging,
                dataset=spec.dataset,
            ),
        )
        return
    changed = [
        f"{k}: {getattr(row, k)!r} -> {getattr(spec, k)!r}" for k in COMPARED if getattr(row, k) != getattr(spec, k)
    ]
    if changed:
        raise UserError(
            f"experiment {spec.name!r} already exists with other settings ({'; '.join(changed)}); use another name"
        )


def plan(spec: ExperimentSpec, pairs: list[Pair], database: str, force: bool, mailbox_url: str | None) -> list[Pair]:
    """The pairs that need (re)running; their old rows are cleared as needed and they are marked queued."""
    register(spec, database)
    existing = {r.id: r for r in db.query(database, db.PairRun, experiment=spec.name)}
    todo = []
    for pair in pairs:
        pid = pair_id(spec.name, pair)
        old = existing.get(pid)
        if old is not None and old.status == PairStatus.DONE and not force:
            continue
        runs = [db.get(database, db.AgentRun, agent_run_id(spec.name, pair, a)) for a, _ in spec.agents(pair)]
        finished = [r for r in runs if r is not None and r.status not in NOT_FINAL]
        if force:
            _forget(database, spec.name, pid)
            shared_remote.forget(spec.name, pair.key)
            finished = []
        if mailbox_url and not finished:
            Mailbox(mailbox_url, spec.name, pair.key).reset()
        db.upsert(
            database,
            db.PairRun(
                id=pid,
                experiment=spec.name,
                repo=pair.repo,
                task_id=pair.task_id,
                features=",".join(map(str, pair.features)),
                setting=spec.setting,
                status=PairStatus.QUEUED,
            ),
        )
        todo.append(pair)
    return todo


def _forget(database: str, experiment: str, pid: str) -> None:
    from sqlmodel import Session, select

    with Session(db.engine(database)) as session:
        for model in (db.AgentRun, db.Evaluation, db.MessageRow):
            for row in session.exec(select(model).where(model.pair_id == pid)).all():
                session.delete(row)
        session.commit()


def signature(app, spec: ExperimentSpec, pair: Pair):
    """The pair's chord: one agent task per agent, then the evaluation; named for Flower."""
    spec_json, pair_json = spec.to_json(), pair.to_json()
    header = [
        app.signature(AGENT_TASK, args=(spec_json, pair_json, agent_id, list(features)), immutable=True).set(
            argsrepr=repr((spec.name, pair.key, agent_id)), kwargsrepr="{}"
        )
        for agent_id, features in spec.agents(pair)
    ]
    body = app.signature(EVALUATE_TASK, args=(spec_json, pair_json), immutable=True).set(
        argsrepr=repr((spec.name, pair.key, "evaluate")), kwargsrepr="{}"
    )
    return chord(header, body, app=app)


def submit(
    app, spec: ExperimentSpec, pairs: list[Pair], database: str, *, force: bool = False, mailbox_url: str | None = None
) -> dict[Pair, object]:
    """Enqueue every pair that needs work; returns pair -> AsyncResult of its evaluation."""
    todo = plan(spec, pairs, database, force, mailbox_url)
    return {pair: signature(app, spec, pair).apply_async() for pair in todo}


def wait(
    spec: ExperimentSpec,
    pending: dict[Pair, object],
    database: str,
    *,
    timeout: float | None = None,
    progress: Callable[[int], None] | None = None,
    poll: float = 0.5,
) -> list[dict]:
    """Wait until every submitted pair has a result; a pair whose chord failed is recorded as an infra error."""
    deadline = None if timeout is None else time.monotonic() + timeout
    left = dict(pending)
    while left:
        for pair, result in list(left.items()):
            if result.ready():
                if result.failed():
                    _record_failure(spec, pair, database, f"pair workflow failed: {result.result!r}"[:2000])
                del left[pair]
                if progress:
                    progress(1)
        if left and deadline is not None and time.monotonic() > deadline:
            for pair in left:
                _record_failure(spec, pair, database, "timed out waiting for the pair's tasks")
            break
        if left:
            time.sleep(poll)
    return records(database, spec.name)


def release(app) -> None:
    """Stop listening for the results this process sent, while the broker is still there.

    Celery's Redis backend subscribes to every task it sends and unsubscribes when the
    AsyncResult is garbage-collected: at interpreter exit, or after an embedded broker
    is gone, that prints errors. The outcomes themselves are in the database.
    """
    backend = app.backend
    for mapping in getattr(backend, "_pending_results", ()):
        for waiters in list(mapping.values()):
            for result in list(waiters.values()):
                try:
                    backend.remove_pending_result(result)
                except Exception:  # noqa: BLE001 - best effort, see above
                    pass


def _record_failure(spec: ExperimentSpec, pair: Pair, database: str, error: str) -> None:
    pid = pair_id(spec.name, pair)
    row = db.get(database, db.PairRun, pid)
    if row is not None and row.status == PairStatus.DONE:
        return
    db.upsert(
        database,
        db.PairRun(
            id=pid,
            experiment=spec.name,
            repo=pair.repo,
            task_id=pair.task_id,
            features=",".join(map(str, pair.features)),
            setting=spec.setting,
            status=PairStatus.ERROR,
            error=error,
            error_kind=ErrorKind.INFRA,
            finished_at=db.now(),
        ),
    )
