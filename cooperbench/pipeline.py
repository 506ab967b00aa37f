"""The two steps of a pair, as plain functions: run one agent, then evaluate the pair.

Celery tasks (tasks.py) call these; so do `cooperbench eval` and the tests. Neither step
raises for anything that happens inside a pair: every failure is recorded in the result
rows with its kind (`infra` for the farm's own failures, `agent` for the agent's), so one
broken pair never stops an experiment and an infrastructure failure is never scored as
the agent's.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import redis

from . import artifacts, capture, db, teamremote, teamstart
from .agents import AgentContext, AgentInfraError, AgentResult, get_agent, partial_result
from .agenttimer import AgentTimer
from .dataset import Dataset, Pair
from .evaluation import EvalOutcome, evaluate, write_logs
from .experiment import ExperimentSpec, agent_run_id, pair_id
from .liveness import Watch
from .mailbox import Mailbox
from .repocache import RepoCache
from .results import record
from .sandbox import SandboxError, get_backend, track
from .settings import UserError, db_url

log = logging.getLogger(__name__)
INFRA = "InfraError"
# Set when an embedded run is interrupted: tasks still running in this process then record
# nothing (their sandboxes are gone), so the next run does them again.
ABANDONED = threading.Event()
SKIPPED = "Skipped"  # not started: the experiment's cost cap or time limit was reached
NOT_FINAL = (INFRA, SKIPPED)  # agent runs that a later run of the experiment does again


def paid(usage: dict | None) -> float:
    """The known cost in USD an AgentRun's usage records: its run's and its earlier, failed attempts'."""
    usage = usage or {}
    return (usage.get("cost_usd") or 0.0) + (usage.get("earlier_attempts_cost_usd") or 0.0)


def spent(database: str, experiment: str) -> float:
    """The known cost in USD of every agent run of the experiment so far."""
    return sum(paid(r.usage) for r in db.query(database, db.AgentRun, experiment=experiment))


def budget_spent(spec: ExperimentSpec, database: str) -> str | None:
    """Why no new agent of the experiment may start (its cost cap or time limit is spent), or None."""
    if spec.deadline is not None and time.time() >= spec.deadline:
        ended = datetime.fromtimestamp(spec.deadline, timezone.utc).isoformat(timespec="seconds")
        return f"the experiment's time limit passed at {ended}"
    if spec.max_cost is not None and (cost := spent(database, spec.name)) >= spec.max_cost:
        return f"the experiment's cost cap (${spec.max_cost:g}) is reached (${cost:.4f} spent)"
    return None


def backend_for(spec: ExperimentSpec):
    """The experiment's sandbox backend, hiding its dataset (gold patches) and logs from agents."""
    return get_backend(spec.backend, hide=[Path(spec.dataset), Path(spec.logs)])


def _summary(run: db.AgentRun, retryable: bool = False) -> dict:
    return {"agent_id": run.agent_id, "status": run.status, "error": run.error, "retryable": retryable}


def run_agent(spec: ExperimentSpec, pair: Pair, agent_id: str, features: tuple[int, ...],
              mailbox_url: str | None, database: str | None = None) -> dict:
    """Run one agent of a pair in a fresh sandbox and record its AgentRun row (at most once)."""
    database = db_url(database)
    row_id = agent_run_id(spec.name, pair, agent_id)
    done = db.get(database, db.AgentRun, row_id)
    if done is not None and done.status not in NOT_FINAL:
        return _summary(done)  # already ran to its own end: never pay for it twice

    started, t0 = db.now(), time.monotonic()
    earlier = paid(done.usage) if done is not None else 0.0  # attempts that failed still cost money
    folder = artifacts.pair_dir(Path(spec.logs), spec.name, pair.key)
    row = db.AgentRun(id=row_id, experiment=spec.name, pair_id=pair_id(spec.name, pair), agent_id=agent_id,
                      features=",".join(map(str, features)), agent=spec.agent, model=spec.model,
                      status=INFRA, started_at=started)
    row.usage = {"earlier_attempts_cost_usd": earlier} if earlier else {}
    result: AgentResult | None = None
    sandbox = watch = None
    retryable = ended = False
    team = [a for a, _ in spec.agents(pair)]
    teammates = [a for a in team if a != agent_id]
    together = bool(teammates and mailbox_url and (spec.messaging or spec.git))  # teams start together
    if (why := budget_spent(spec, database)) is not None:
        if together:
            try:
                teamstart.withdraw(mailbox_url, spec.name, pair.key, agent_id, team, why)
            except redis.RedisError as exc:  # the teammates then give up at their own time-out
                log.warning("cannot tell the team of %s that %s does not start: %s", pair.key, agent_id, exc)
        row.status, row.finished_at, row.error = SKIPPED, db.now(), f"not started: {why}"
        db.upsert(database, row)
        return _summary(row)
    try:
        task = Dataset(Path(spec.dataset)).task(pair.repo, pair.task_id)
        feats = [task.feature(n) for n in features]
        agent = get_agent(spec.agent)
        channel = Mailbox(mailbox_url, spec.name, pair.key) if teammates and mailbox_url else None
        if together:
            if spec.messaging:
                channel.replay(agent_id)  # a restarted agent reads the conversation from the beginning
            # alive before joining the team: teammates that see this agent started must also see it alive
            watch = Watch(channel, agent_id, teammates, notify=spec.messaging).start()
            teamstart.wait_for_team(mailbox_url, spec.name, pair.key, agent_id, team, spec.team_start_timeout)
        shared_remote = spec.git and bool(teammates)
        remote = teamremote.ensure(spec.name, pair.key, RepoCache().base(task.repo_url, task.base_commit)) \
            if shared_remote else None
        sandbox = track(backend_for(spec).create(
            task, labels={"experiment": spec.name, "pair": pair.key, "agent": agent_id},
            **({"team_remote": str(remote)} if remote else {})))
        capture.prepare(sandbox)
        mailbox = channel.for_agent(agent_id) if channel and spec.messaging else None
        ctx = AgentContext(spec.name, pair.key, agent_id, teammates, task, feats, sandbox, mailbox,
                           spec.model, spec.agent_config, teamremote.REMOTE_NAME if shared_remote else None)
        result, row.patch = _run_timed(agent, ctx, spec.agent_time_limit)
        ended = True
        row.status, row.error, row.steps = result.status, result.error, result.steps
        row.messages_sent, row.messages_received = result.messages_sent, result.messages_received
        row.usage = {**row.usage, **(result.usage or {})}
    except UserError as exc:
        row.status, row.error = "Error", f"bad input: {exc}"
    except teamstart.TeammateWithdrew as exc:
        row.status, row.error = SKIPPED, f"not started: {exc}"
    except Exception as exc:
        log.warning("infrastructure failure in %s %s: %s", pair.key, agent_id, exc)
        result = partial_result(exc) or result  # what the agent had done, and spent, before the failure
        row.status, row.error = INFRA, f"{type(exc).__name__}: {exc}"
        row.steps = result.steps if result else 0
        row.usage = {**row.usage, **((result.usage or {}) if result else {}),
                     "traceback": traceback.format_exc()[-4000:]}
        # worth another try, unless the team never got together (a pool too small stays too small)
        retryable = not isinstance(exc, teamstart.TeamDidNotStart)
    finally:
        if watch is not None:
            watch.stop(finished=ended)
        if sandbox is not None:
            sandbox.close()
    if watch is not None and watch.lost:
        row.usage = {**row.usage, "teammates_lost": sorted(watch.lost)}
    row.finished_at, row.duration = db.now(), time.monotonic() - t0
    if ABANDONED.is_set():
        return _summary(row)
    artifacts.write_text(folder / f"{agent_id}.patch", row.patch)
    row.trajectory_path = artifacts.write_json(folder / f"{agent_id}.trajectory.json", {
        "agent": spec.agent, "agent_id": agent_id, "features": list(features), "status": row.status,
        "error": row.error, "steps": row.steps, "trajectory": result.trajectory if result else []})
    db.upsert(database, row)
    return _summary(row, retryable)


def _run_timed(agent, ctx: AgentContext, seconds: float | None) -> tuple[AgentResult, str]:
    """The agent's run under the harness's clock, and the patch it made.

    The agent's own crash is its `Error`; past the clock it is `LimitsExceeded` (whatever it
    raised once its sandbox was closed under it). The farm's failures (sandbox, broker, a model
    API down past the retries) and bad input (a rejected dataset patch) are raised, carrying
    what the agent had done so far.
    """
    timer = AgentTimer(ctx.sandbox, seconds)
    try:
        with timer:
            result = agent.run(ctx)
    except Exception as exc:
        if timer.fired:
            result = partial_result(exc) or AgentResult("LimitsExceeded")
        elif isinstance(exc, (SandboxError, redis.RedisError, AgentInfraError, UserError)):
            raise
        else:
            log.exception("agent %s crashed", ctx.agent_id)
            result = AgentResult("Error", error=f"{type(exc).__name__}: {exc}")
    if timer.fired:
        result.status, result.error = "LimitsExceeded", timer.reason
        return result, timer.patch
    return result, capture.capture(ctx.sandbox)


def disruption(spec: ExperimentSpec, runs: dict[str, db.AgentRun | None]) -> str | None:
    """Why the team of a coop pair did not work together throughout, or None.

    A teammate was lost mid-run (its heartbeat stopped: see `liveness`), or an agent's run
    began after a teammate's had ended (it was started again after its worker died, or
    resumed by a later `run`), so it worked without a live teammate.
    """
    if len(runs) < 2 or not (spec.messaging or spec.git):
        return None
    ran = {a: r for a, r in runs.items() if r is not None and r.status not in NOT_FINAL}
    reasons = [f"{a} lost {', '.join(r.usage['teammates_lost'])} mid-run" for a, r in ran.items()
               if (r.usage or {}).get("teammates_lost")]
    reasons += [f"{a} started after {b} had finished" for a, r in ran.items() for b, other in ran.items()
                if a != b and r.started_at and other.finished_at and r.started_at > other.finished_at]
    return "; ".join(reasons) or None


def evaluate_pair(spec: ExperimentSpec, pair: Pair, mailbox_url: str | None, database: str | None = None) -> dict:
    """Merge and test the pair's recorded patches; record the PairRun, Evaluation and message rows."""
    database = db_url(database)
    pid = pair_id(spec.name, pair)
    folder = artifacts.pair_dir(Path(spec.logs), spec.name, pair.key)
    agents = spec.agents(pair)
    runs = {a: db.get(database, db.AgentRun, agent_run_id(spec.name, pair, a)) for a, _ in agents}
    patches = {a: (r.patch if r is not None and r.status not in NOT_FINAL else None) for a, r in runs.items()}
    skipped = [f"{a}: {r.error}" for a, r in runs.items() if r is not None and r.status == SKIPPED]
    bad_input = [f"{a}: {r.error}" for a, r in runs.items() if r is not None and (r.error or "").startswith("bad input")]

    rows: list = []
    if skipped:
        outcome = EvalOutcome("missing_input", None, {}, [], "; ".join(skipped), "budget")
    elif bad_input:
        outcome = EvalOutcome("error", None, {}, [], "; ".join(bad_input), "input")
    else:
        try:
            task = Dataset(Path(spec.dataset)).task(pair.repo, pair.task_id)
            outcome = evaluate(task, list(pair.features), patches, backend_for(spec),
                               labels={"experiment": spec.name, "pair": pair.key, "agent": "eval"},
                               test_timeout=spec.test_timeout)
        except UserError as exc:
            outcome = EvalOutcome("error", None, {}, [], f"bad input: {exc}", "input")
        except Exception as exc:
            log.warning("evaluation of %s failed: %s", pair.key, exc)
            outcome = EvalOutcome("error", None, {}, [], f"evaluation failed: {type(exc).__name__}: {exc}", "infra")
    if outcome.error_kind is None:
        failed_agents = [f"{a}: {r.status}: {r.error}" for a, r in runs.items() if r and r.status == "Error"]
        if failed_agents:
            outcome.error, outcome.error_kind = "; ".join(failed_agents), "agent"

    if ABANDONED.is_set():
        return {}
    log_paths = write_logs(outcome, folder / "eval")
    for f in outcome.features:
        rows.append(db.Evaluation(id=f"{pid}|{f.feature}", experiment=spec.name, pair_id=pid, feature=f.feature,
                                  passed=f.passed, exit_code=f.exit_code, tests_passed=f.tests_passed,
                                  tests_failed=f.tests_failed, framework=f.framework, duration=f.duration,
                                  timed_out=f.timed_out, log_path=log_paths[f.feature]))
    messages = Mailbox(mailbox_url, spec.name, pair.key).log() if mailbox_url and spec.setting == "coop" else []
    for m in messages:
        rows.append(db.MessageRow(id=f"{pid}|{m.seq}", experiment=spec.name, pair_id=pid, seq=m.seq,
                                  sender=m.sender, recipient=m.recipient, body=m.body, sent_at=m.sent_at))
    if messages:
        artifacts.write_json(folder / "messages.json", [m.__dict__ for m in messages])
    pair_row = db.PairRun(
        id=pid, experiment=spec.name, repo=pair.repo, task_id=pair.task_id,
        features=",".join(map(str, pair.features)), setting=spec.setting,
        status={"infra": "error", "budget": "skipped"}.get(outcome.error_kind, "done"),
        merge_status=outcome.merge_status, merge_strategy=outcome.merge_strategy, patch_status=outcome.patch_status,
        both_passed=outcome.both_passed, clean_success=outcome.clean_success,
        error=outcome.error, error_kind=outcome.error_kind, disruption=disruption(spec, runs), finished_at=db.now())
    existing = db.get(database, db.PairRun, pid)
    if existing is not None:
        pair_row.submitted_at = existing.submitted_at
    db.upsert(database, *rows, pair_row)
    data = record(pair_row, {e.feature: e.passed for e in rows if isinstance(e, db.Evaluation)})
    artifacts.write_json(folder / "result.json", data)
    return data
