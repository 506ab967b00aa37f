"""The Python API: `run` an experiment (embedded farm or a configured broker), `evaluate` its stored
patches again, read its `status`. The CLI is a thin layer over these."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from . import settings
from .agents import DEFAULT_AGENT, check_agent, default_model, trusted
from .agents import preflight as check_model
from .data import inputs as travel
from .data.dataset import Dataset, Pair
from .errors import UserError
from .experiment import ExperimentSpec
from .pair.eval_step import evaluate_pair
from .sandbox import available as sandbox_backends
from .store import db
from .store.backends import open_store
from .store.results import records


def select_pairs(dataset=None, repo=None, task=None, features=None, subset=None) -> tuple[Dataset, list[Pair]]:
    ds = Dataset(settings.dataset_dir(dataset))
    pairs = ds.pairs(repo=repo, task_id=task, features=tuple(features) if features else None, subset=subset)
    if not pairs:
        raise UserError("no pairs match the filters")
    return ds, pairs


def select_tasks(dataset=None, repo=None, task=None, features=None, subset=None) -> list:
    """The tasks of the pairs the filters select."""
    ds, pairs = select_pairs(dataset, repo, task, features, subset)
    return _tasks(ds, pairs)


def make_spec(
    name: str,
    ds: Dataset | str,
    *,
    setting="coop",
    agent=DEFAULT_AGENT,
    model=None,
    backend="local",
    git=False,
    messaging=True,
    logs=None,
    agent_config=None,
    test_timeout=1800.0,
    max_cost=None,
    team_start_timeout=600.0,
    time_limit=None,
    agent_time_limit=7200.0,
) -> ExperimentSpec:
    check_agent(agent)
    if max_cost is not None and max_cost < 0:
        raise UserError(f"--max-cost must be at least 0 (got {max_cost:g})")
    for option, value in (("--time-limit", time_limit), ("--agent-time-limit", agent_time_limit)):
        if value is not None and value <= 0:
            raise UserError(f"{option} must be more than 0 seconds (got {value:g})")
    model = model or default_model(agent)
    if max_cost is not None and model is not None and default_model(agent) is not None:
        from .agents.llm_client import price_known

        if not price_known(model):
            raise UserError(
                f"--max-cost needs the model's price, and litellm does not know the price of {model!r}: "
                "a cost cap could not be kept (drop --max-cost, or use a model litellm prices)"
            )
    store = settings.artifacts_url(logs)
    open_store(store)  # an unknown kind of store is bad input, said now
    if backend not in sandbox_backends(backend):
        raise UserError(f"unknown sandbox backend {backend!r} (known: {', '.join(sorted(sandbox_backends()))})")
    if agent_config is not None and not Path(agent_config).is_file():
        raise UserError(f"agent config not found: {agent_config}")
    return ExperimentSpec(
        name=name,
        setting=setting,
        agent=agent,
        model=model,
        backend=backend,
        git=git,
        messaging=messaging,
        dataset=str(ds.root) if isinstance(ds, Dataset) else str(ds),
        logs=store,
        agent_config=str(Path(agent_config).resolve()) if agent_config else None,
        test_timeout=test_timeout,
        max_cost=max_cost,
        team_start_timeout=team_start_timeout,
        deadline=None if time_limit is None else time.time() + time_limit,
        agent_time_limit=agent_time_limit,
    )


@contextmanager
def _env(**values: str):
    """Set environment variables for the in-process worker, restoring them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def check_confinement(agent: str) -> None:
    """The embedded farm's sandboxes are this machine's: an agent whose commands must be confined is
    refused here, before anything is recorded, when this machine cannot confine them."""
    if settings.get("no_bwrap") or trusted(agent):
        return  # a trusted agent runs unconfined there, with a notice (sandbox/local.py)
    from .sandbox.confine import remedy, unavailable

    why = unavailable()
    if why is not None:
        raise UserError(f"cannot run the {agent!r} agent on the local backend: {why}; {remedy()}")


def check_broker(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except (redis.RedisError, ValueError) as exc:
        raise UserError(f"cannot reach the broker at {url}: {str(exc).splitlines()[0]}") from None


def run(
    name: str,
    *,
    dataset=None,
    repo=None,
    task=None,
    features=None,
    subset=None,
    setting="coop",
    agent=DEFAULT_AGENT,
    model=None,
    backend="local",
    git=False,
    messaging=True,
    force=False,
    broker=None,
    db_url=None,
    logs=None,
    agent_config=None,
    max_cost=None,
    team_start_timeout=600.0,
    test_timeout=1800.0,
    time_limit=None,
    agent_time_limit=7200.0,
    concurrency=None,
    timeout=None,
    wait=True,
    preflight=True,
    progress: Callable[[int, int], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> list[dict]:
    """Run an experiment and return one record per pair.

    With no broker configured (argument or the `broker_url` setting) it runs on an embedded
    farm: a private Redis and an in-process worker, on this machine, whose task environments
    are prepared first (`say` tells which). With a broker, it submits to the farm's workers
    (each prepares what it lacks on first use) and (if `wait`) follows progress. Pairs already
    done are not run again unless `force`. With `preflight`, an LLM agent's model and key are checked
    first with one minimal call (`agents.preflight`): a bad key or an unknown model is a `UserError`.
    """
    from .farm import submit as workflow
    from .farm.app import create_app

    ds, pairs = select_pairs(dataset, repo, task, features, subset)
    spec = make_spec(
        name,
        ds,
        setting=setting,
        agent=agent,
        model=model,
        backend=backend,
        git=git,
        messaging=messaging,
        logs=logs,
        agent_config=agent_config,
        max_cost=max_cost,
        team_start_timeout=team_start_timeout,
        test_timeout=test_timeout,
        time_limit=time_limit,
        agent_time_limit=agent_time_limit,
    )
    url = settings.broker_url(broker)
    if url is None and spec.backend == "local":
        check_confinement(spec.agent)
    # the tasks and the agent config travel with the experiment, through the artifact store
    spec = replace(spec, inputs=travel.publish(spec.logs, _tasks(ds, pairs), spec.agent_config))
    database = settings.db_url(db_url)
    db.engine(database)
    if url is not None:
        check_broker(url)
    if preflight and (warning := check_model(agent, spec.model, spec.agent_config)) and say:
        say(warning)  # a configuration error (bad key, unknown model) raised above: nothing started

    def go(app) -> list[dict]:
        # the time limit counts from submission: not the model check, the inputs' upload or the environments
        run_spec = spec if time_limit is None else replace(spec, deadline=time.time() + time_limit)
        pending = workflow.submit(app, run_spec, pairs, database, force=force, mailbox_url=app.conf.broker_url, say=say)
        done = [len(pairs) - len(pending)]
        if progress:
            progress(done[0], len(pairs))

        def step(n: int) -> None:
            done[0] += n
            if progress:
                progress(done[0], len(pairs))

        try:
            if not wait:
                return records(database, spec.name)
            return workflow.wait(app, run_spec, pending, database, timeout=timeout, progress=step)
        finally:
            workflow.release(app)

    if url is not None:
        app = create_app(url)
        try:
            return go(app)
        finally:
            app.close()

    from .farm.embedded import farm

    _prepare_environments(ds, pairs, backend, say)

    workers = concurrency or max(2, os.cpu_count() or 2)
    with _env(**{settings.env_name("db_url"): database}), farm(workers) as app:
        return go(app)


def _tasks(ds: Dataset, pairs: list[Pair]) -> list:
    return [ds.task(repo_name, task_id) for repo_name, task_id in dict.fromkeys((p.repo, p.task_id) for p in pairs)]


def _prepare_environments(ds: Dataset, pairs: list[Pair], backend: str, say) -> None:
    """Prepare (once per machine) the environments the pairs' tasks need, saying so; a task that
    cannot be prepared is left to its pairs, which record it as an infrastructure error."""
    from .environments.prepared import EnvironmentUnavailable, ensure

    for repo_name, task_id in dict.fromkeys((p.repo, p.task_id) for p in pairs):
        try:
            ensure(ds.task(repo_name, task_id), backend, say=say)
        except EnvironmentUnavailable as exc:
            if say:
                say(f"{exc}: its pairs are recorded as infrastructure errors")


def evaluate(name: str, *, db_url=None, logs=None, dataset=None, concurrency=None) -> list[dict]:
    """Evaluate an experiment's stored patches again (merge and test), updating its results."""
    database = settings.db_url(db_url)
    exp = db.get(database, db.Experiment, name)
    if exp is None:
        raise UserError(f"no experiment named {name!r} in {database.split('@')[-1]}")
    # its tasks as they travelled with it (read from the store), unless a dataset folder is named
    travelled = exp.inputs if not dataset else None
    ds = exp.dataset if travelled else Dataset(Path(dataset) if dataset else Path(exp.dataset))
    spec = make_spec(
        name,
        ds,
        setting=exp.setting,
        agent=exp.agent,
        model=exp.model,
        backend=exp.backend,
        git=exp.git,
        messaging=exp.messaging,
        logs=logs or exp.artifacts,
    )
    spec = replace(spec, inputs=travelled)
    pairs = [
        Pair(r.repo, r.task_id, tuple(int(f) for f in r.features.split(",")))
        for r in db.query(database, db.PairRun, experiment=name)
    ]
    with ThreadPoolExecutor(max_workers=concurrency or max(2, os.cpu_count() or 2)) as pool:
        list(pool.map(lambda p: evaluate_pair(spec, p, None, database), pairs))
    return records(database, name)


def status(name: str, *, db_url=None) -> list[dict]:
    database = settings.db_url(db_url)
    if db.get(database, db.Experiment, name) is None:
        raise UserError(f"no experiment named {name!r}")
    return records(database, name)


def report(names: list[str], *, db_url=None, fmt: str = "table", output=None) -> dict:
    """Report on experiments (the first compared with each other one); returns the report dict.

    `fmt` table or json: the report is returned (and written to `output` if given); csv, json or
    parquet with `output`: the pair and agent rows are written into that folder; html: the static
    report folder is written to `output` (default `report/`)."""
    from .report import export, rows, summary

    if not names:
        raise UserError("name at least one experiment (-n NAME)")
    if len(set(names)) != len(names):
        raise UserError("an experiment is named twice")
    database = settings.db_url(db_url)
    data = rows.load(database, list(names))
    result = summary.report(data, list(names))
    if fmt == "html":
        from .report import html  # matplotlib and jinja2 load only for the HTML report

        html.build(data, result, database, output or "report")
    elif fmt in export.FORMATS and output is not None:
        export.write(data, output, fmt, result)
    elif fmt in ("csv", "parquet"):
        raise UserError(f"--format {fmt} writes files: give a folder with -o PATH")
    return result
