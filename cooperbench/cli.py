"""The `cooperbench` command line: run, submit, eval, status, report and dataset checks.

Every user error ends as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import click

from . import api, settings
from .errors import UserError
from .settings import env_name
from .statuses import EnvironmentState, MergeStatus, PairStatus


def _features(value: str | None) -> tuple[int, ...] | None:
    if not value:
        return None
    try:
        return tuple(sorted({int(v) for v in value.split(",") if v.strip()}))
    except ValueError:
        raise UserError(f"bad feature list {value!r} (use e.g. 1,2)") from None


def selection(f):
    """The options that choose pairs from a dataset."""
    for opt in reversed(
        [
            click.option(
                "--dataset",
                "dataset",
                default=None,
                help=f"Dataset folder (env {env_name('dataset')}, default ./dataset).",
            ),
            click.option("-r", "--repo", default=None, help="Only this repository folder, e.g. textkit_task."),
            click.option("-t", "--task", "task", type=int, default=None, help="Only this task id."),
            click.option("-f", "--features", default=None, help="Only pairs of these features, e.g. 1,2."),
            click.option("-s", "--subset", default=None, help="Only the pairs of subsets/NAME.json."),
        ]
    ):
        f = opt(f)
    return f


def experiment_options(f):
    for opt in reversed(
        [
            click.option("-n", "--name", required=True, help="Experiment name (results accumulate under it)."),
            click.option("--setting", type=click.Choice(["coop", "solo"]), default="coop", show_default=True),
            click.option(
                "-a",
                "--agent",
                default="mini_swe_agent",
                show_default=True,
                help="Agent name: mini_swe_agent, gold, nop, or one registered by another package.",
            ),
            click.option(
                "-m",
                "--model",
                default=None,
                help="Model for LLM agents, any litellm model string (mini_swe_agent's default: "
                "gemini/gemini-3-flash-preview).",
            ),
            click.option(
                "--max-cost",
                type=float,
                default=None,
                help="Cost cap in USD for the whole experiment: no new agent starts once it is spent.",
            ),
            click.option(
                "--time-limit",
                type=float,
                default=None,
                help="Seconds from submission after which no new agent of the experiment starts (queued "
                "pairs are then recorded as not started; running agents finish).",
            ),
            click.option(
                "--agent-time-limit",
                type=float,
                default=7200.0,
                show_default=True,
                help="Seconds one agent run may take before the harness ends it (LimitsExceeded, keeping "
                "its change so far), whatever the agent's own limits.",
            ),
            click.option(
                "--team-start-timeout",
                type=float,
                default=600.0,
                show_default=True,
                help="Seconds a coop agent waits for its teammates to start before the pair is an "
                "infrastructure error.",
            ),
            click.option(
                "--test-timeout",
                type=float,
                default=1800.0,
                show_default=True,
                help="Seconds one feature's test command may run before it is killed (and fails).",
            ),
            click.option("--backend", default="local", show_default=True, help="Sandbox backend."),
            click.option("--git/--no-git", default=False, help="Give each pair a shared git remote."),
            click.option("--messaging/--no-messaging", default=True, help="Let teammates message each other."),
            click.option("--agent-config", type=click.Path(), default=None, help="Agent configuration file."),
            click.option(
                "--preflight/--no-preflight",
                default=True,
                show_default=True,
                help="Check the model and its key with one minimal call before anything starts.",
            ),
            click.option(
                "--force",
                is_flag=True,
                help="Redo pairs that are already done, cancelling the queued or running agents of pairs in flight.",
            ),
            click.option("--broker", default=None, help=f"Broker URL (env {env_name('broker_url')})."),
            click.option("--db", "db_url", default=None, help=f"Results database URL (env {env_name('db_url')})."),
            click.option(
                "--logs",
                default=None,
                help=f"Artifact store: a folder or gs://BUCKET/PREFIX (env {env_name('artifacts')}, "
                f"else {env_name('logs')}; default ./logs).",
            ),
        ]
    ):
        f = opt(f)
    return selection(f)


def friendly(fn):
    """Turn expected failures into one-line errors."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted: what finished is recorded; run the same command again to resume", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)  # abandoned task threads must not hold the exit (their sandboxes are closed)
        except Exception as exc:  # the last line of defence: still one line, no traceback
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            first = (str(exc).strip().splitlines() or [""])[0]
            raise click.ClickException(f"{type(exc).__name__}: {first}") from None

    return wrapper


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more, and show tracebacks.")
def main(verbose: bool) -> None:
    """CooperBench farm: can coding agents work together as teammates?"""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    settings.load_dotenv()  # API keys for the embedded farm's agents
    signal.signal(signal.SIGINT, _on_interrupt)


def _on_interrupt(signum, frame):
    """Ctrl-C: unwind (closing sandboxes, stopping the embedded broker), but never for long.

    If the clean-up itself hangs, the process leaves after 20 s anyway; a second Ctrl-C
    leaves at once. Results are written whole or not at all, so either way a later run
    resumes from what is recorded.
    """
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    watchdog = threading.Timer(20, os._exit, args=(130,))
    watchdog.daemon = True
    watchdog.start()
    raise KeyboardInterrupt


def _print_records(recs: list[dict], as_json: bool) -> None:
    from .store.results import table

    click.echo(json.dumps(recs, indent=2) if as_json else table(recs))


def _fail_if_nothing_graded(recs: list[dict]) -> None:
    """A run, or an evaluation, whose every finished pair is unscored (infrastructure or evaluation
    errors) measured nothing: said plainly, with a non-zero exit, never a quiet `0/0`."""
    from .store.results import totals

    t = totals(recs)
    unscored = t["infra_errors"] + t["evaluation_errors"]
    if t["scored"] == 0 and unscored:
        raise UserError(
            f"nothing was graded: {t['infra_errors']} infrastructure and {t['evaluation_errors']} evaluation "
            "error(s), and no scored pair (each pair's `error` says why)"
        )


@main.command()
@experiment_options
@click.option(
    "-j", "--concurrency", type=int, default=None, help="Embedded worker threads (default: CPUs, at least 2)."
)
@click.option("--timeout", type=float, default=None, help="Give up waiting after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@friendly
def run(name, concurrency, timeout, as_json, **options):
    """Run an experiment and wait for its results (embedded farm unless a broker is configured)."""
    with Progress(name, options.get("db_url")) as progress:
        recs = api.run(
            name,
            features=_features(options.pop("features")),
            say=lambda message: click.echo(message, err=True),
            concurrency=concurrency,
            timeout=timeout,
            progress=progress,
            **options,
        )
    _print_records(recs, as_json)
    _fail_if_nothing_graded(recs)


class Progress:
    """Live progress of a run: pairs done of total, passed so far, known cost so far, infrastructure
    errors and time left. A bar on a terminal; elsewhere (logs, CI) a line at every tenth of the way."""

    def __init__(self, label: str, db_url: str | None = None):
        self.label, self.db_url, self.bar, self.shown = label, db_url, None, -1
        self.started, self.first = time.monotonic(), None
        self.read_at, self.snapshot = 0.0, None

    def figures(self, done: int, total: int) -> str:
        from .report.live import snapshot

        if self.snapshot is None or done == total or time.monotonic() - self.read_at > 2:  # a big farm: not every pair
            try:
                self.snapshot, self.read_at = snapshot(settings.db_url(self.db_url), self.label), time.monotonic()
            except Exception:  # noqa: BLE001 - progress must never stop a run
                return ""
        s = self.snapshot
        cost = f"${s['known_cost_usd']:.4f}" + (
            f" (+{s['cost_unknown_agents']} unknown)" if s["cost_unknown_agents"] else ""
        )
        text = f"passed {s['passed']}/{s['scored']} scored, cost {cost}, infra errors {s['infra_errors']}"
        if self.first is not None and done > self.first and done < total:
            left = (time.monotonic() - self.started) / (done - self.first) * (total - done)
            text += f", about {_duration(left)} left"
        return text

    def __call__(self, done: int, total: int) -> None:
        if self.first is None:
            self.first, self.started = done, time.monotonic()
        if sys.stderr.isatty():
            if self.bar is None:
                self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr, show_pos=True)
                self.bar.__enter__()
            self.bar.label = f"{self.label} [{self.figures(done, total)}]"
            self.bar.update(done - self.bar.pos)
            return
        tenth = 10 * done // max(total, 1)
        if tenth != self.shown:
            self.shown = tenth
            click.echo(f"{self.label}: {done}/{total} pair(s) finished; {self.figures(done, total)}", err=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


@main.command()
@experiment_options
@click.option("--wait", "wait", is_flag=True, help="Follow progress until every pair is done.")
@click.option("--json", "as_json", is_flag=True)
@friendly
def submit(name, wait, as_json, **options):
    """Enqueue an experiment on the configured broker and return (or --wait)."""
    if settings.broker_url(options.get("broker")) is None:
        raise UserError(
            f"no broker configured: pass --broker or set {env_name('broker_url')} "
            "(or use `cooperbench run` for the embedded farm)"
        )
    with Progress(name, options.get("db_url")) as progress:
        recs = api.run(
            name,
            features=_features(options.pop("features")),
            wait=wait,
            progress=progress if wait else None,
            say=lambda message: click.echo(message, err=True),
            **options,
        )
    if wait:
        _print_records(recs, as_json)
        _fail_if_nothing_graded(recs)
    else:
        queued = sum(r["status"] == PairStatus.QUEUED for r in recs)
        click.echo(f"{name}: {queued} pair(s) queued, {len(recs) - queued} already finished")


@main.command("eval")
@click.option("-n", "--name", required=True)
@click.option("--db", "db_url", default=None)
@click.option("--logs", default=None, help="Artifact store to write to (default: the experiment's own).")
@click.option("--dataset", default=None)
@click.option("-j", "--concurrency", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
@friendly
def eval_(name, db_url, logs, dataset, concurrency, as_json):
    """Evaluate an experiment's stored patches again."""
    recs = api.evaluate(name, db_url=db_url, logs=logs, dataset=dataset, concurrency=concurrency)
    _print_records(recs, as_json)
    _fail_if_nothing_graded(recs)


@main.command()
@click.option("-n", "--name", required=True)
@click.option("--db", "db_url", default=None)
@click.option("--json", "as_json", is_flag=True)
@friendly
def status(name, db_url, as_json):
    """Show an experiment's per-pair results."""
    _print_records(api.status(name, db_url=db_url), as_json)


@main.command()
@click.option("-n", "--name", "names", multiple=True, required=True, help="An experiment; name several to compare "
              "them on the same pairs (the first against each other one: differences are first − other).")  # fmt: skip
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv", "parquet", "html"]),
    default="table",
    show_default=True,
    help="table: text; json: the report as JSON (with -o: a folder with pairs.json, agents.json, summary.json); "
    "csv/parquet: pair and agent rows into the folder -o; html: the static report folder -o (default ./report).",
)
@click.option("-o", "--output", type=click.Path(), default=None, help="Output file or folder.")
@click.option("--db", "db_url", default=None, help=f"Results database URL (env {env_name('db_url')}).")
@friendly
def report(names, fmt, output, db_url):
    """Statistics of experiments (pass rates with task-clustered 95% intervals), comparisons, exports, HTML."""
    from .report.text import render

    result = api.report(list(names), db_url=db_url, fmt=fmt, output=output)
    if fmt == "table" and output is not None:
        Path(output).write_text(render(result))
    elif fmt == "table":
        click.echo(render(result))
    elif fmt == "json" and output is None:
        click.echo(json.dumps(result, indent=1))
    elif fmt == "html":
        click.echo(f"report written to {os.path.join(output or 'report', 'index.html')}", err=True)
    else:
        click.echo(f"rows written to {output}", err=True)


@main.group()
def dataset() -> None:
    """Inspect and check a dataset."""


@dataset.command("list")
@selection
@click.option("--json", "as_json", is_flag=True)
@friendly
def dataset_list(as_json, features, **options):
    """List the pairs the filters select."""
    _, pairs = api.select_pairs(features=_features(features), **options)
    if as_json:
        click.echo(json.dumps([p.to_json() for p in pairs], indent=2))
    else:
        for p in pairs:
            click.echo(p.key)
        click.echo(f"{len(pairs)} pair(s)")


@dataset.command("validate")
@selection
@click.option("--backend", default="local", show_default=True, help="Sandbox backend the tests run on.")
@click.option("--json", "as_json", is_flag=True)
@friendly
def dataset_validate(as_json, backend, features, dataset, repo, task, subset):
    """Check that every feature's tests fail on the base commit and pass with its gold patch
    (offline, in the task's prepared environment, as the farm's evaluations run them)."""
    from .data.dataset import Dataset
    from .grading.checks import validate
    from .sandbox import get_backend

    ds = Dataset(settings.dataset_dir(dataset))
    only = None
    if features or subset:  # the features of the pairs these filters select
        _, pairs = api.select_pairs(dataset, repo, task, _features(features), subset)
        only = {}
        for p in pairs:
            only.setdefault(f"{p.repo}/task{p.task_id}", set()).update(p.features)
        if features:  # -f names the features themselves, not every feature they are paired with
            only = {key: numbers & set(_features(features)) for key, numbers in only.items()}
    tasks = [
        t
        for t in ds.tasks
        if (repo is None or t.repo == repo) and (task is None or t.task_id == task) and (only is None or t.key in only)
    ]
    if not tasks:
        raise UserError("no tasks match the filters")
    from .environments.prepared import ensure

    problems = validate(
        ds,
        get_backend(backend, hide=[ds.root], trusted=True),
        tasks,
        only=only,
        environment_of=lambda t: ensure(t, backend),
    )
    if as_json:
        click.echo(json.dumps([p.__dict__ for p in problems], indent=2))
    else:
        for p in problems:
            click.echo(str(p))
        n = sum(len(only[t.key]) if only is not None else len(t.features) for t in tasks)
        click.echo(f"{len(tasks)} task(s), {n} feature(s): {len(problems)} problem(s)")
    if problems:
        sys.exit(1)


@dataset.command("conflicts")
@selection
@click.option("--json", "as_json", is_flag=True)
@friendly
def dataset_conflicts(as_json, features, **options):
    """Report, for every pair, whether its gold patches merge cleanly."""
    from .grading.checks import conflicts

    ds, pairs = api.select_pairs(features=_features(features), **options)
    found = conflicts(ds, pairs)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for e in found:
        key = f"{e['repo']}/task{e['task_id']}/" + "-".join(f"f{n}" for n in e["features"])
        extra = ", ".join(e.get("conflicting_files", [])) or e.get("error", "")
        click.echo(f"{key:44} {e['status']:10} {extra}")
    counts = {
        s: sum(e["status"] == s for e in found) for s in (MergeStatus.CLEAN, MergeStatus.CONFLICTS, MergeStatus.ERROR)
    }
    click.echo(f"{len(found)} pair(s): " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@main.group("env")
def env_group() -> None:
    """Task environments: each task's dependencies, prepared once per machine and used offline."""


@env_group.command("prepare")
@selection
@click.option("--backend", default="local", show_default=True, help="Sandbox backend the environments are for.")
@click.option("--force", is_flag=True, help="Prepare again, even environments already ready or failed.")
@click.option("--json", "as_json", is_flag=True)
@friendly
def env_prepare(backend, force, as_json, features, **options):
    """Prepare the selected tasks' environments (with network; no agent code runs), then check them offline."""
    from .environments.prepared import prepare

    tasks = api.select_tasks(features=_features(features), **options)
    states = []
    with click.progressbar(tasks, label="preparing", file=sys.stderr, item_show_func=_task_key) as bar:
        for task in bar:  # a task that cannot be prepared is recorded and the others go on (`prepare`);
            # an outage of this machine (no container engine) stops it in one line, recording nothing
            states.append(prepare(task, backend, force=force, say=lambda _: None))
    _print_envs(states, as_json)
    if any(s.state == EnvironmentState.FAILED for s in states):
        sys.exit(1)


def _task_key(task) -> str | None:
    return task.key if task is not None else None


@env_group.command("list")
@click.option("--backend", default=None, help="Only the environments of this backend.")
@click.option("--json", "as_json", is_flag=True)
@friendly
def env_list(backend, as_json):
    """List this machine's task environments: state, size, when prepared, why one failed."""
    from .environments.prepared import listing

    _print_envs(listing(backend), as_json)


@env_group.command("rm")
@click.option("-r", "--repo", default=None, help="Only this repository folder.")
@click.option("-t", "--task", "task", type=int, default=None, help="Only this task id.")
@click.option("--backend", default=None, help="Only the environments of this backend.")
@friendly
def env_rm(repo, task, backend):
    """Remove task environments from this machine (they are prepared again on next use)."""
    from .environments.prepared import listing, remove

    chosen = [
        s
        for s in listing(backend)
        if (repo is None or s.task.split("/")[0] == repo) and (task is None or s.task.endswith(f"/task{task}"))
    ]
    removed, kept = remove(chosen)
    click.echo(f"removed {removed} environment(s)")
    for why in kept:
        click.echo(why, err=True)
    if kept:
        sys.exit(1)


def _print_envs(states, as_json: bool) -> None:
    from dataclasses import asdict

    if as_json:
        click.echo(json.dumps([asdict(s) for s in states], indent=2))
        return
    click.echo(f"{'task':36} {'backend':7} {'runner':8} {'toolchain':26} {'state':18} {'size':>10} {'prepared':16} "
               f"{'took':>6}  cause")  # fmt: skip
    for s in states:
        size = f"{(s.size_bytes or 0) / 2**20:.1f} MiB"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.prepared_at)) if s.prepared_at else "-"
        took = f"{s.seconds:.0f} s" if s.seconds is not None else "-"
        runner = ",".join(s.toolchains or []) or "-"
        tools = ", ".join(f"{tool} {version}" for tool, version in (s.versions or {}).items()) or "-"
        row = f"{s.task:36} {s.backend:7} {runner:8} {tools:26} {s.state:18} {size:>10} {when:16} {took:>6}"
        click.echo(f"{row}  {s.cause or ''}")
    click.echo(f"{len(states)} environment(s)")


@main.command("config")
@click.option("--broker", default=None, help="Broker URL, as `run`/`submit` take it.")
@click.option("--db", "db_url", default=None, help="Results database URL, as `run`/`status` take it.")
@click.option("--logs", default=None, help="Artifacts folder, as `run` takes it.")
@click.option("--dataset", default=None, help="Dataset folder, as `run` takes it.")
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@friendly
def config(broker, db_url, logs, dataset, as_json):
    """Show every setting's effective value and where it came from (option, environment, .env, default)."""
    rows = settings.effective({"broker_url": broker, "db_url": db_url, "logs": logs, "dataset": dataset})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    group = None
    for r in rows:
        if r["group"] != group:
            group = r["group"]
            click.echo(f"# {group}")
        click.echo(f"{r['name']:{width}}  {r['value']}  ({r['source']})")
        click.echo(f"{'':{width}}  {r['help']}")


@main.group("sandbox")
def sandbox_group() -> None:
    """Sandbox maintenance."""


@sandbox_group.command("gc")
@click.option(
    "--all",
    "all_",
    is_flag=True,
    help="Remove every cooperbench container of this host (live workers' too), the git servers and their network.",
)
@friendly
def sandbox_gc(all_: bool) -> None:
    """Remove the containers that killed workers left behind (docker backend)."""
    from .sandbox.gc import gc

    removed = gc(all=all_)
    for name in removed:
        click.echo(name)
    click.echo(f"removed {len(removed)} container(s)", err=True)


@main.group("deploy")
def deploy_group() -> None:
    """Run a farm on more machines: a GCP worker fleet, the queue-depth metrics autoscalers read."""


@deploy_group.command("gcp")
@click.option("--project", required=True, help="GCP project id.")
@click.option("--zone", required=True, help="Zone of the managed instance group, e.g. europe-west1-b.")
@click.option("--size", type=int, required=True, help="Workers to start with.")
@click.option("--machine-type", required=True, help="e.g. n2-standard-8.")
@click.option("--name", default="cooperbench-workers", show_default=True, help="Instance group name.")
@click.option("--spot", is_flag=True, help="Spot VMs (preemptible; their running tasks go back to the queue).")
@click.option("--min-size", type=int, default=0, show_default=True, help="Autoscaler's lower bound.")
@click.option("--max-size", type=int, default=None, help="Autoscaler's upper bound (default: --size).")
@click.option("--pairs-per-worker", type=int, default=4, show_default=True, help="Queued agent tasks per VM.")
@click.option("-j", "--concurrency", type=int, default=8, show_default=True, help="Worker processes per VM.")
@click.option("--broker", default=None, help=f"Broker URL the VMs use (env {env_name('broker_url')}).")
@click.option("--db", "db_url", default=None, help=f"Results database URL the VMs use (env {env_name('db_url')}).")
@click.option("--source", required=True, help="What the VMs pip-install, e.g. git+https://host/cooperbench-farm@v1.")
@click.option("--dataset-source", default=None, help="gs:// folder or https:// tarball copied to each VM at boot.")
@click.option("--dataset-dir", default="/data/cooperbench/dataset", show_default=True, help="Dataset path on VMs.")
@click.option(
    "--artifacts",
    default=None,
    help="The fleet's artifact store, gs://BUCKET/PREFIX; submit with --logs the same (default: a folder on each VM).",
)
@click.option("--startup-script", type=click.Path(dir_okay=False), default=None, help="Default: deploy/gcp/startup.sh.")
@click.option("--apply", "apply_", is_flag=True, help="Run the gcloud commands (default: print them).")
@friendly
def deploy_gcp(broker, db_url, startup_script, apply_, **options):
    """Print (or --apply) the gcloud commands for an autoscaled group of worker VMs."""
    from .deploy import gcp

    broker = settings.get("broker_url", broker)
    db_url = settings.get("db_url", db_url) if (db_url or os.environ.get(env_name("db_url"))) else None
    if not broker or not db_url:
        raise UserError(
            f"the VMs need the farm's broker and database: pass --broker and --db "
            f"(or set {env_name('broker_url')} and {env_name('db_url')})"
        )
    extra = {"startup_script": Path(startup_script)} if startup_script else {}
    fleet = gcp.Fleet(broker_url=broker, db_url=db_url, **options, **extra)
    if apply_:
        gcp.apply(fleet, say=lambda line: click.echo(line, err=True))
    else:
        click.echo(gcp.script(fleet))


@deploy_group.command("queue-metrics")
@click.option("--broker", default=None, help=f"Broker URL (env {env_name('broker_url')}).")
@click.option("--port", type=int, default=9808, show_default=True)
@click.option("--address", default="0.0.0.0", show_default=True)
@friendly
def deploy_queue_metrics(broker, port, address):
    """Serve the broker's queue lengths as Prometheus metrics at http://ADDRESS:PORT/metrics."""
    from .deploy import queue_metrics

    url = settings.get("broker_url", broker)
    if not url:
        raise UserError(f"no broker configured: pass --broker or set {env_name('broker_url')}")
    queue_metrics.serve(url, port, address)
    click.echo(f"queue metrics at http://{address}:{port}/metrics", err=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
