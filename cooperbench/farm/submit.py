"""Submitting an experiment: which pairs still need work, one Celery workflow per pair, and waiting.

Each coop pair is `chord([agent task per feature], evaluate task)`; a solo pair, with one agent
task, is the same shape without the join: `chain(agent task, evaluate task)` (no chord counter
to keep, half the broker work of a chord of one). Pairs already done are left alone (unless
forced), so running the same experiment again resumes it; pairs still queued or running
(their marker, `inflight.py`) are waited for, never sent twice (`--force` cancels them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from celery import chain, chord, states

from ..data.dataset import Pair
from ..errors import UserError
from ..experiment import COMPARED, ExperimentSpec, agent_run_id, pair_id
from ..statuses import NOT_FINAL, ErrorKind, PairStatus
from ..store import db
from ..store.results import records
from ..team import remote as shared_remote
from ..team.keys import PairKeys, clear
from ..team.mailbox import connect
from . import inflight
from .tasks import AGENT_TASK, EVALUATE_TASK

BATCH = 500  # workflows sent on one broker connection


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
                artifacts=spec.logs,
                inputs=spec.inputs,
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
    if (row.artifacts, row.inputs) != (spec.logs, spec.inputs):  # where `eval` and `report` find them
        row.artifacts, row.inputs = spec.logs, spec.inputs
        db.upsert(database, row)


@dataclass
class Plan:
    """What a submission does: `todo` pairs to send (with the evaluation ids they were claimed with),
    `running` pairs already queued or running (their evaluation ids, to wait for), and the `cancelled`
    pairs whose running chords `--force` replaces (old evaluation ids)."""

    todo: list[Pair] = field(default_factory=list)
    ids: dict[Pair, str] = field(default_factory=dict)
    running: dict[Pair, str] = field(default_factory=dict)
    cancelled: dict[Pair, str] = field(default_factory=dict)


def plan(
    spec: ExperimentSpec, pairs: list[Pair], database: str, force: bool, mailbox_url: str | None, *, app=None
) -> Plan:
    """The pairs that need (re)running; their old rows are cleared as needed and they are marked queued.

    A pair whose chord is still queued or running (its marker, `inflight.py`) is not sent again, nor
    its rows and Redis keys touched: it is waited for; with `force` its chord is cancelled instead.
    Set-based: one read of the experiment's pair statuses (and one of its agent statuses when
    some pair needs work), a few statements per 500 pairs, and the pairs' Redis keys read and deleted
    by name in pipelined batches; a finished experiment costs one query."""
    register(spec, database)
    pair_status = db.column_map(database, db.PairRun, "status", experiment=spec.name)
    todo = [p for p in pairs if force or pair_status.get(pair_id(spec.name, p)) != PairStatus.DONE]
    result = Plan()
    if not todo:
        return result
    client = connect(mailbox_url) if mailbox_url else None
    try:
        if client is not None:
            found = inflight.read(client, spec.name, todo)
            if found and app is not None:  # a chord that failed with nobody waiting left its marker
                ended = outcomes(app, list(found.values()))
                found = {p: i for p, i in found.items() if i not in ended}
            if force:
                result.cancelled = found
            else:
                result.running = found
                todo = [p for p in todo if p not in found]
            ids = {p: inflight.new_id() for p in todo}
            lost = inflight.claim(client, spec.name, ids, replace=force)
            result.running.update({p: i for p, i in lost.items() if i})
            todo = [p for p in todo if p not in lost]
        result.todo, result.ids = todo, {p: ids[p] for p in todo} if client is not None else {}
        if todo:
            _reset(spec, todo, database, force, client)
    finally:
        if client is not None:
            client.close()
    return result


def _reset(spec: ExperimentSpec, todo: list[Pair], database: str, force: bool, client) -> None:
    """Clear what the pairs' earlier runs left (all of it with `force`) and mark them queued."""
    pids = [pair_id(spec.name, p) for p in todo]
    if force:
        for model in (db.AgentRun, db.Evaluation, db.MessageRow):
            db.delete_rows(database, model, "pair_id", pids)
        for pair in todo:
            shared_remote.forget(spec.name, pair.key)
        started = set()
    else:
        agent_status = db.column_map(database, db.AgentRun, "status", experiment=spec.name)
        ended = {k for k, v in agent_status.items() if v not in NOT_FINAL}
        started = {  # a pair with an agent that ran to its end keeps its conversation (the others resume it)
            pair for pair in todo if any(agent_run_id(spec.name, pair, a) in ended for a, _ in spec.agents(pair))
        }
    if client is not None:
        clear(client, [(PairKeys(spec.name, p.key), [a for a, _ in spec.agents(p)]) for p in todo if p not in started])
    queued = [
        db.PairRun(
            id=pid,
            experiment=spec.name,
            repo=pair.repo,
            task_id=pair.task_id,
            features=",".join(map(str, pair.features)),
            setting=spec.setting,
            status=PairStatus.QUEUED,
        )
        for pid, pair in zip(pids, todo, strict=True)
    ]
    db.replace_all(database, queued)


def signature(app, spec: ExperimentSpec, pair: Pair, evaluation_id: str | None = None):
    """The pair's workflow: one agent task per agent, then the evaluation; named for Flower.

    A chord when agents must all end before the evaluation, a chain when there is one: a failed
    agent task fails the evaluation either way (Celery marks the chord's body, or the chain's
    next task, failed), which `wait` records as an infrastructure error. The agent tasks store
    no result but a failure in the backend (the chord still counts them; their rows are in the
    database); the evaluation's result is what `wait` reads, in bulk. The evaluation's id is
    the pair's claim (`inflight.py`), the agents' ids follow from it."""
    evaluation_id = evaluation_id or inflight.new_id()
    spec_json, pair_json = spec.to_json(), pair.to_json()
    header = [
        app.signature(AGENT_TASK, args=(spec_json, pair_json, agent_id, list(features)), immutable=True).set(
            argsrepr=repr((spec.name, pair.key, agent_id)),
            kwargsrepr="{}",
            ignore_result=True,
            task_id=inflight.agent_task_id(evaluation_id, agent_id),
        )
        for agent_id, features in spec.agents(pair)
    ]
    body = app.signature(EVALUATE_TASK, args=(spec_json, pair_json), immutable=True).set(
        argsrepr=repr((spec.name, pair.key, "evaluate")), kwargsrepr="{}", task_id=evaluation_id
    )
    return chain(header[0], body, app=app) if len(header) == 1 else chord(header, body, app=app)


def send(app, spec: ExperimentSpec, pairs: list[Pair], ids: dict[Pair, str] | None = None) -> dict[Pair, str]:
    """Send the pairs' workflows, `BATCH` on each broker connection taken from the pool; returns pair -> id
    of its evaluation task. (Threads sending batches at once were measured no faster: Celery's own work
    per workflow, under the GIL, dominates the round trips.)"""
    ids = ids or {}
    sent = {}
    for i in range(0, len(pairs), BATCH):
        with app.producer_or_acquire() as producer:
            for pair in pairs[i : i + BATCH]:
                sent[pair] = signature(app, spec, pair, ids.get(pair)).apply_async(producer=producer).id
    return sent


def cancel(app, spec: ExperimentSpec, chords: dict[Pair, str]) -> None:
    """Revoke the chords `--force` replaces: queued tasks are dropped, running ones terminated."""
    ids = []
    for pair, evaluation_id in chords.items():
        ids.append(evaluation_id)
        ids.extend(inflight.agent_task_id(evaluation_id, a) for a, _ in spec.agents(pair))
    for i in range(0, len(ids), 1000):
        app.control.revoke(ids[i : i + 1000], terminate=True)


def submit(
    app,
    spec: ExperimentSpec,
    pairs: list[Pair],
    database: str,
    *,
    force: bool = False,
    mailbox_url: str | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[Pair, str]:
    """Enqueue every pair that needs work; returns pair -> id of its evaluation task (see `wait`), the pairs
    already queued or running included (they are waited for, not sent again)."""
    planned = plan(spec, pairs, database, force, mailbox_url, app=app)
    if planned.cancelled:
        cancel(app, spec, planned.cancelled)
        if say:
            names = ", ".join(p.key for p in list(planned.cancelled)[:5])
            more = f" and {len(planned.cancelled) - 5} more" if len(planned.cancelled) > 5 else ""
            say(f"--force: cancelled the queued or running agents of {len(planned.cancelled)} pair(s): {names}{more}")
    if planned.running and say:
        say(f"{len(planned.running)} pair(s) already queued or running: waiting for them, not starting them again")
    return {**planned.running, **send(app, spec, planned.todo, planned.ids)}


def outcomes(app, task_ids: list[str]) -> dict[str, tuple[str, object]]:
    """The finished tasks among `task_ids`: id -> (state, result), read with one MGET per 1,000 ids."""
    backend = app.backend
    done = {}
    for i in range(0, len(task_ids), 1000):
        chunk = task_ids[i : i + 1000]
        for task_id, raw in zip(chunk, backend.mget([backend.get_key_for_task(t) for t in chunk]), strict=True):
            if raw is None:
                continue
            meta = backend.decode_result(raw)
            if meta["status"] in states.READY_STATES:
                done[task_id] = (meta["status"], meta.get("result"))
    return done


def wait(
    app,
    spec: ExperimentSpec,
    pending: dict[Pair, str],
    database: str,
    *,
    timeout: float | None = None,
    progress: Callable[[int], None] | None = None,
    poll: float = 0.5,
) -> list[dict]:
    """Wait until every submitted pair's evaluation has ended; a pair whose chord failed is recorded as an
    infra error. Each round reads every pending result at once (`outcomes`), never one by one."""
    deadline = None if timeout is None else time.monotonic() + timeout
    left = {task_id: pair for pair, task_id in pending.items()}
    while left:
        for task_id, (state, result) in outcomes(app, list(left)).items():
            if state != states.SUCCESS:
                _record_failure(spec, left[task_id], database, f"pair workflow failed: {result!r}"[:2000])
            del left[task_id]
            if progress:
                progress(1)
        if left and deadline is not None and time.monotonic() > deadline:
            for pair in left.values():
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
