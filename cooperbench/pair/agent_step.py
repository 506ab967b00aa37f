"""A pair's first step: run one agent in a fresh sandbox and record its AgentRun row (at most once).

The Celery agent task calls `run_agent`; so do the tests. It never raises for anything that
happens inside the pair: an agent crash is its `Error`; a sandbox, broker or harness failure,
or a model API still down after the agent's retries, is `InfraError` (kept with what the
attempt cost, retried by the farm, never scored); a spent budget is `Skipped`.
"""

from __future__ import annotations

import logging
import shlex
import time
import traceback

import redis

from .. import settings
from ..agents import (
    AgentContext,
    AgentInfraError,
    AgentResult,
    ModelConfigError,
    cost_limit,
    get_agent,
    partial_result,
)
from ..agents.llm_client import redact
from ..data.dataset import Pair
from ..data.repocache import RepoCache
from ..environments.prepared import EnvironmentUnavailable, for_agent
from ..environments.prepared import ensure as ensure_environment
from ..errors import UserError
from ..experiment import ExperimentSpec, agent_run_id, pair_id
from ..sandbox import ConfinementUnavailable, SandboxError, track
from ..settings import db_url
from ..statuses import NOT_FINAL, AgentStatus
from ..store import db
from ..store.artifacts import PairPaths
from ..store.backends import StoreError, open_store
from ..team import remote as shared_remote
from ..team import start as team_start
from ..team.liveness import Watch
from ..team.mailbox import Mailbox, connect
from . import capture
from .abandon import ABANDONED
from .budget import budget_spent, paid, release, reserve
from .timer import AgentTimer

log = logging.getLogger(__name__)


def _summary(run: db.AgentRun, retryable: bool = False) -> dict:
    return {"agent_id": run.agent_id, "status": run.status, "error": run.error, "retryable": retryable}


def run_agent(
    spec: ExperimentSpec,
    pair: Pair,
    agent_id: str,
    features: tuple[int, ...],
    mailbox_url: str | None,
    database: str | None = None,
    waiting_since: float | None = None,
) -> dict:
    """Run one agent of a pair in a fresh sandbox and record its AgentRun row (at most once).

    With `waiting_since` (the farm's agent task: the epoch time of its first try), a coop agent
    waits for its teammates only for the `team_start_hold`; if they are still missing and the
    team-start timeout since then is not over, nothing is recorded and the summary says
    `requeue` (seconds): the task is tried again later without holding a worker slot."""
    database = db_url(database)
    row_id = agent_run_id(spec.name, pair, agent_id)
    done = db.get(database, db.AgentRun, row_id)
    if done is not None and done.status not in NOT_FINAL:
        return _summary(done)  # already ran to its own end: never pay for it twice

    started, t0 = db.now(), time.monotonic()
    earlier = paid(done.usage) if done is not None else 0.0  # attempts that failed still cost money
    paths = PairPaths.of(spec.name, pair.key)
    row = db.AgentRun(
        id=row_id,
        experiment=spec.name,
        pair_id=pair_id(spec.name, pair),
        agent_id=agent_id,
        features=",".join(map(str, features)),
        agent=spec.agent,
        model=spec.model,
        status=AgentStatus.INFRA_ERROR,
        started_at=started,
    )
    row.usage = {"earlier_attempts_cost_usd": earlier} if earlier else {}
    result: AgentResult | None = None
    sandbox = watch = None
    retryable = ended = False
    requeue: float | None = None
    team = [a for a, _ in spec.agents(pair)]
    teammates = [a for a in team if a != agent_id]
    together = bool(teammates and mailbox_url and (spec.messaging or spec.git))  # teams start together
    budget = connect(mailbox_url) if mailbox_url and spec.max_cost is not None else None
    why = budget_spent(spec, database, check_cost=budget is None)
    if why is None and budget is not None:
        try:  # the pair's agents' cost limits, reserved whole, or not at all
            why = reserve(
                budget,
                spec,
                database,
                row_id,
                [agent_run_id(spec.name, pair, a) for a in team],
                cost_limit(spec.agent, spec.agent_config),
            )
        except redis.RedisError as exc:
            log.warning(
                "cannot reserve the cost of %s %s (%s): checking the cap without reservations", pair.key, agent_id, exc
            )
            budget.close()
            budget, why = None, budget_spent(spec, database)
    if why is not None:
        if together:
            try:
                team_start.withdraw(mailbox_url, spec.name, pair.key, agent_id, team, why)
            except redis.RedisError as exc:  # the teammates then give up at their own time-out
                log.warning("cannot tell the team of %s that %s does not start: %s", pair.key, agent_id, exc)
        row.status, row.finished_at, row.error = AgentStatus.SKIPPED, db.now(), f"not started: {why}"
        row.cost_usd = paid(row.usage)
        db.upsert(database, row)
        _release(budget, spec, row_id, 0.0)  # a reservation a teammate made for it
        return _summary(row)
    try:
        task = spec.task(pair.repo, pair.task_id)
        feats = [task.feature(n) for n in features]
        agent = get_agent(spec.agent)
        channel = Mailbox(mailbox_url, spec.name, pair.key) if teammates and mailbox_url else None
        if together:
            if spec.messaging:
                channel.replay(agent_id)  # a restarted agent reads the conversation from the beginning
            # alive before joining the team: teammates that see this agent started must also see it alive
            watch = Watch(channel, agent_id, teammates, notify=spec.messaging).start()
            left = spec.team_start_timeout
            if waiting_since is not None:
                left = max(0.0, spec.team_start_timeout - (time.time() - waiting_since))
            hold = min(left, settings.get("team_start_hold")) if waiting_since is not None else left
            try:
                team_start.wait_for_team(
                    mailbox_url, spec.name, pair.key, agent_id, team, hold, window=spec.team_start_timeout
                )
            except team_start.TeamDidNotStart:
                if hold >= left:
                    raise
                # back, holding no slot meanwhile, before a teammate that arrives now ends its own hold
                raise team_start.NotTogetherYet(min(hold / 3, left - hold)) from None
            watch.together()
        with_remote = spec.git and bool(teammates)
        remote = (
            shared_remote.ensure(spec.name, pair.key, RepoCache().base(task.repo_url, task.base_commit))
            if with_remote
            else None
        )
        environment, setup = None, None
        # checked for every agent (a task that cannot be prepared is an infrastructure error);
        # given to the agents that run the project's code
        prepared = ensure_environment(task, spec.backend)
        if prepared is not None and getattr(agent, "uses_environment", True):
            environment, setup = for_agent(task, prepared)
        extra = {"team_remote": str(remote)} if remote else {}
        if environment is not None:
            extra["environment"] = environment
        sandbox = track(
            spec.sandbox_backend().create(
                task, labels={"experiment": spec.name, "pair": pair.key, "agent": agent_id}, **extra
            )
        )
        capture.prepare(sandbox)  # the harness's git, before any confined command touches the copy
        if setup is not None:  # the project and its test tools, installed as in the published images
            sandbox.exec(f"REPO={shlex.quote(sandbox.repo_dir)}; {setup}", timeout=600)
        mailbox = channel.for_agent(agent_id) if channel and spec.messaging else None
        ctx = AgentContext(
            spec.name,
            pair.key,
            agent_id,
            teammates,
            task,
            feats,
            sandbox,
            mailbox,
            spec.model,
            spec.agent_config_path(),
            shared_remote.REMOTE_NAME if with_remote else None,
        )
        result, row.patch = _run_timed(agent, ctx, spec.agent_time_limit)
        ended = True
        row.status, row.error, row.steps = result.status, result.error, result.steps
        row.messages_sent, row.messages_received = result.messages_sent, result.messages_received
        row.usage = {**row.usage, **(result.usage or {})}
    except UserError as exc:
        row.status, row.error = AgentStatus.ERROR, f"bad input: {exc}"
    except team_start.TeammateWithdrew as exc:
        row.status, row.error = AgentStatus.SKIPPED, f"not started: {exc}"
    except team_start.NotTogetherYet as exc:
        requeue = exc.after
    except Exception as exc:
        log.warning("infrastructure failure in %s %s: %s", pair.key, agent_id, exc)
        result = partial_result(exc) or result  # what the agent had done, and spent, before the failure
        row.status, row.error = AgentStatus.INFRA_ERROR, f"{type(exc).__name__}: {exc}"
        row.steps = result.steps if result else 0
        row.usage = {
            **row.usage,
            **((result.usage or {}) if result else {}),
            "traceback": traceback.format_exc()[-4000:],
        }
        # worth another try, unless the team never got together (a pool too small stays too small) or
        # the task's environment, or confinement, cannot be had on this machine (recorded as such: a retry
        # changes nothing) (nor does a model that refuses the key or does not exist: the configuration must
        # change first)
        retryable = not isinstance(
            exc, (team_start.TeamDidNotStart, EnvironmentUnavailable, ConfinementUnavailable, ModelConfigError)
        )
    finally:
        if watch is not None:
            watch.stop(finished=ended)
        if sandbox is not None:
            sandbox.close()
    if requeue is not None:  # nothing happened yet: no row, the reservation kept for the next try
        if budget is not None:
            budget.close()
        return {"agent_id": agent_id, "status": None, "error": None, "retryable": False, "requeue": requeue}
    if watch is not None and watch.lost:
        row.usage = {**row.usage, "teammates_lost": sorted(watch.lost)}
    row.finished_at, row.duration = db.now(), time.monotonic() - t0
    if ABANDONED.is_set():
        if budget is not None:
            budget.close()
        return _summary(row)
    if row.patch:  # a key the agent copied into its working tree is never stored
        row.patch = redact(row.patch)
    try:
        store = open_store(spec.logs)
        store.put_text(paths.patch(agent_id), row.patch)
        row.trajectory_path = store.put_json(
            paths.trajectory(agent_id),
            {
                "agent": spec.agent,
                "agent_id": agent_id,
                "features": list(features),
                "status": row.status,
                "error": row.error,
                "steps": row.steps,
                "trajectory": result.trajectory if result else [],
            },
        )
    except (StoreError, UserError) as exc:  # not kept, so not final: the farm runs the agent again
        log.warning("cannot keep the artifacts of %s %s: %s", pair.key, agent_id, exc)
        row.status, row.error, retryable = AgentStatus.INFRA_ERROR, f"{type(exc).__name__}: {exc}", True
    row.cost_usd = paid(row.usage)
    db.upsert(database, row)
    _release(budget, spec, row_id, (row.usage or {}).get("cost_usd") or 0.0)
    return _summary(row, retryable)


def _release(client, spec: ExperimentSpec, row_id: str, cost: float) -> None:
    """Add the run's cost to the experiment's spending and free its reservation (row written first)."""
    if client is None:
        return
    try:
        release(client, spec, row_id, cost)
    except redis.RedisError as exc:  # a later seed from the database counts the cost
        log.warning("cannot release the cost reservation of %s: %s", row_id, exc)
    finally:
        client.close()


def _run_timed(agent, ctx: AgentContext, seconds: float | None) -> tuple[AgentResult, str]:
    """The agent's run under the harness's clock, and the patch it made.

    The agent's own crash is its `Error`; past the clock it is `LimitsExceeded` (whatever it
    raised once its sandbox was closed under it). The farm's failures (sandbox, broker, a model
    API down past the retries) and bad input (a rejected dataset patch) are raised, carrying
    what the agent had done so far: these are the exceptions `Agent.run`'s contract names.
    """
    timer = AgentTimer(ctx.sandbox, seconds)
    try:
        with timer:
            result = agent.run(ctx)
    except Exception as exc:
        if timer.fired:
            result = partial_result(exc) or AgentResult(AgentStatus.LIMITS_EXCEEDED)
        elif isinstance(exc, (SandboxError, redis.RedisError, AgentInfraError, UserError)):
            raise
        else:
            log.exception("agent %s crashed", ctx.agent_id)
            result = AgentResult(AgentStatus.ERROR, error=f"{type(exc).__name__}: {exc}")
    if timer.fired:
        result.status, result.error = AgentStatus.LIMITS_EXCEEDED, timer.reason
        return result, timer.patch
    try:
        return result, capture.capture(ctx.sandbox)
    except capture.CaptureError as exc:  # the agent made its tree uncapturable: its outcome, not the farm's
        result.status, result.error = AgentStatus.ERROR, str(exc)
        return result, ""
