"""The farm's settings: every `COOPERBENCH_*` environment variable, declared once with its type,
default and one line of help, and the one place that reads them.

A value comes from, in order: an explicit option (a command-line flag or API argument), the
environment (a variable of the `.env` file counts as environment, see `load_dotenv`), the
default. `get(key, option)` gives the typed value and `source(key, option)` where it came
from; `cooperbench config` prints both for every setting. Values are read at each call, so a
setting changed in the environment (by a test, or `.env`) is seen at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError

PREFIX = "COOPERBENCH_"


def _default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cooperbench"


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"not a yes/no value: {text!r}")


@dataclass(frozen=True)
class Setting:
    key: str  # the name code asks for; the variable is COOPERBENCH_<KEY>
    type: Callable[[str], Any]  # turns the variable's text into the value
    default: Any  # a value, or a callable giving it (defaults that depend on other settings)
    help: str
    group: str
    empty_is_value: bool = False  # an empty variable is a value of its own (else it means "unset")
    url: bool = False  # a URL whose password is hidden when shown

    @property
    def env(self) -> str:
        return PREFIX + self.key.upper()

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default


def _path(text: str) -> Path:
    return Path(text).expanduser()


def _paths(text: str) -> tuple[Path, ...]:
    return tuple(_path(p) for p in text.split(os.pathsep) if p)


TABLE: tuple[Setting, ...] = (
    # where things live
    Setting("dataset", _path, Path("dataset"), "Dataset folder (option --dataset).", "paths"),
    Setting(
        "db_url",
        str,
        lambda: f"sqlite:///{Path('cooperbench.db').resolve()}",
        "Results database, any SQLAlchemy URL (option --db).",
        "paths",
        url=True,
    ),
    Setting(
        "logs", _path, Path("logs"), "Artifacts folder: patches, trajectories, test logs (option --logs).", "paths"
    ),
    Setting(
        "artifacts",
        str,
        None,
        "Artifact store: a folder or gs://BUCKET/PREFIX (Google Cloud Storage); unset: the logs folder.",
        "paths",
    ),
    Setting("cache", _path, _default_cache, "Cache of upstream repositories, sandboxes and team remotes.", "paths"),
    Setting(
        "scratch",
        _path,
        lambda: get("cache") / "sandboxes",
        "Where sandboxes keep their working copies (fast local disk).",
        "paths",
    ),
    Setting(
        "history_depth",
        int,
        0,
        "Commits of history the repository cache fetches behind each base commit, by commit id (0: all of the "
        "base's history, none after it; an upstream that serves no commit by id is cloned whole).",
        "paths",
    ),
    Setting(
        "git_root",
        _path,
        lambda: get("cache") / "remotes",
        "Where the pairs' shared git remotes live (--git); shared storage lets a team span machines.",
        "paths",
    ),
    Setting("dotenv", _path, Path(".env"), "The .env file read for API keys.", "paths"),
    # the farm
    Setting(
        "broker_url",
        str,
        None,
        "Celery broker (Redis); unset, `run` starts a private one (option --broker).",
        "farm",
        url=True,
    ),
    Setting(
        "result_backend",
        str,
        lambda: get("broker_url") or "redis://127.0.0.1:6379/0",
        "Celery result backend (default: the broker).",
        "farm",
        url=True,
    ),
    Setting("result_expires", int, 7 * 24 * 3600, "Seconds Celery keeps a task's result.", "farm"),
    Setting(
        "visibility_timeout",
        int,
        6 * 3600,
        "Seconds before Redis hands an unacknowledged task to another worker; above the longest agent run.",
        "farm",
    ),
    Setting(
        "soft_shutdown_timeout",
        float,
        0.0,
        "Seconds a stopping worker lets running tasks go on before it hands them back to the queue "
        "(with REMAP_SIGTERM=SIGQUIT, SIGTERM does this; 0: Celery's default).",
        "farm",
    ),
    Setting("restore_interval", int, 10, "Seconds between a worker's looks for tasks of dead workers.", "farm"),
    Setting("restore_throttle", int, 10, "Seconds between two restores of unacknowledged tasks.", "farm"),
    Setting(
        "lease_ttl",
        float,
        60.0,
        "Seconds a worker's lease lives unrenewed; the tasks of a worker silent longer go back to the queue.",
        "farm",
    ),
    Setting("reap_interval", float, 10.0, "Seconds between a worker's looks for the expired leases of others.", "farm"),
    Setting("concurrency", int, None, "Processes per `celery -A cooperbench worker` (default: Celery's).", "farm"),
    Setting(
        "db_pool_size",
        int,
        4,
        "Database connections each process keeps at most (PostgreSQL, MySQL); bounds a farm's total.",
        "farm",
    ),
    Setting("infra_retries", int, 2, "Times a task retries an infrastructure failure.", "farm"),
    Setting("infra_backoff", float, 30.0, "Seconds before the first such retry (doubled each time).", "farm"),
    Setting(
        "team_start_hold",
        float,
        15.0,
        "Seconds a coop agent holds its worker slot waiting for its teammates before it is re-queued "
        "(without a slot) to try again, until the experiment's team-start timeout.",
        "farm",
    ),
    Setting(
        "artifacts_retries",
        int,
        5,
        "Times a read or write of the artifact store is retried before it is an infrastructure error.",
        "farm",
    ),
    Setting(
        "artifacts_backoff",
        float,
        1.0,
        "Seconds before the first such retry (doubled each time, at most 60 s).",
        "farm",
    ),
    Setting(
        "heartbeat_ttl",
        float,
        30.0,
        "Seconds a coop agent's heartbeat lives; a teammate silent longer is lost.",
        "farm",
    ),
    # sandboxes
    Setting(
        "no_bwrap",
        _flag,
        False,
        "1: run local sandboxes' commands unconfined, as the worker (only for a trusted agent).",
        "sandbox",
    ),
    Setting("sandbox_memory_mb", int, 4096, "Writable memory of one sandboxed process, MiB (0: none).", "sandbox"),
    Setting("sandbox_processes", int, 512, "Processes a local sandbox may run at once (0: none).", "sandbox"),
    Setting("sandbox_cpu_seconds", int, 3600, "CPU seconds of one sandboxed process (0: none).", "sandbox"),
    Setting("sandbox_file_mb", int, 1024, "Largest file a sandboxed command may write, MiB (0: none).", "sandbox"),
    Setting(
        "sandbox_disk_mb", int, 20480, "Disk a local sandbox may fill, MiB, checked after each command.", "sandbox"
    ),
    Setting(
        "sandbox_expose",
        _paths,
        (),
        "Extra read-only folders for local sandboxes (toolchains outside /usr and /opt), ':'-separated.",
        "sandbox",
    ),
    Setting(
        "image_prefix",
        str,
        "akhatua/cooperbench-",
        "Registry prefix of the published task images; empty: never pull, build from the Dockerfile.",
        "sandbox",
        empty_is_value=True,
    ),
    Setting("base_image", str, None, "BASE_IMAGE build argument for task Dockerfiles (a local base image).", "sandbox"),
    Setting(
        "registry_mirror",
        str,
        None,
        "Registry standing in for Docker Hub in task Dockerfiles' FROM lines (mirror.gcr.io, a lab mirror, "
        "or localhost/<name> for local images).",
        "sandbox",
    ),
    Setting(
        "build_ca_bundle",
        str,
        "auto",
        "PEM bundle that image builds and environment preparing trust (a TLS-inspecting proxy's CA); "
        "auto: this host's own; empty: none.",
        "sandbox",
        empty_is_value=True,
    ),
    Setting("docker_cpus", float, None, "CPUs per container sandbox (docker, modal).", "sandbox"),
    Setting("docker_memory", str, None, "Memory per container sandbox, e.g. 4g (docker, modal).", "sandbox"),
    Setting(
        "sandbox_lifetime",
        lambda t: int(float(t)),
        4 * 3600,
        "Hard limit in seconds on a container sandbox's life.",
        "sandbox",
    ),
    Setting("modal_app", str, "cooperbench", "Modal app the modal backend's sandboxes belong to.", "sandbox"),
    # agents
    Setting("gold_wait", float, 30.0, "Seconds the gold agent waits for its teammate's note in coop.", "agents"),
)

SETTINGS: dict[str, Setting] = {s.key: s for s in TABLE}
_from_dotenv: set[str] = set()  # variables that load_dotenv put into the environment


def setting(key: str) -> Setting:
    try:
        return SETTINGS[key]
    except KeyError:
        raise KeyError(f"no setting named {key!r}") from None


def _raw(s: Setting) -> str | None:
    value = os.environ.get(s.env)
    if value is None or (value == "" and not s.empty_is_value):
        return None
    return value


def get(key: str, option: Any = None) -> Any:
    """The setting's value: `option` if given, else its environment variable, else its default."""
    s = setting(key)
    if option is not None and option != "":
        return option
    raw = _raw(s)
    if raw is None:
        return s.default_value()
    try:
        return s.type(raw)
    except (TypeError, ValueError):
        raise UserError(f"{s.env}={raw!r} is not a valid value ({s.help})") from None


def fingerprint() -> tuple[tuple[str, str], ...]:
    """Every setting's variable as the environment has it now: what a value read from settings
    once (a backend made once per process) must still match."""
    return tuple((s.env, os.environ[s.env]) for s in SETTINGS.values() if s.env in os.environ)


def source(key: str, option: Any = None) -> str:
    """Where `get(key, option)` takes its value from: option, environment, .env or default."""
    s = setting(key)
    if option is not None and option != "":
        return "option"
    if _raw(s) is None:
        return "default"
    return ".env" if s.env in _from_dotenv else "environment"


def shown(key: str, value: Any) -> str:
    """A value as `cooperbench config` prints it: passwords in URLs hidden."""
    if value is None:
        return "-"
    text = str(value)
    if setting(key).url and "@" in text:
        from sqlalchemy.engine import make_url

        try:
            return make_url(text).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - not an SQLAlchemy URL (redis://): hide what precedes the host
            scheme, _, rest = text.partition("://")
            return f"{scheme}://***@{rest.rsplit('@', 1)[-1]}"
    return text


def effective(options: dict[str, Any] | None = None) -> list[dict]:
    """Every setting's value and source, given the options passed (for `cooperbench config`)."""
    options = options or {}
    rows = []
    for s in TABLE:
        option = options.get(s.key)
        try:
            value = get(s.key, option)
        except UserError as exc:
            value = f"invalid: {exc}"
        rows.append(
            {
                "name": s.env,
                "key": s.key,
                "value": shown(s.key, value),
                "source": source(s.key, option),
                "group": s.group,
                "help": s.help,
            }
        )
    return rows


# Typed accessors for the settings most code asks for.


def dataset_dir(value: str | os.PathLike | None = None) -> Path:
    return Path(get("dataset", value)).resolve()


def db_url(value: str | None = None) -> str:
    return get("db_url", value)


def logs_dir(value: str | os.PathLike | None = None) -> Path:
    return Path(get("logs", value)).resolve()


def artifacts_url(value: str | os.PathLike | None = None) -> str:
    """The artifact store: the option (a folder or a store URL), else the `artifacts` setting, else
    the logs folder. A folder is made absolute; a URL (`gs://...`) is kept as it is."""
    chosen = value if value not in (None, "") else get("artifacts")
    if chosen in (None, ""):
        return str(logs_dir())
    text = str(chosen)
    return text if "://" in text else str(Path(text).expanduser().resolve())


def cache_dir() -> Path:
    return Path(get("cache")).resolve()


def broker_url(value: str | None = None) -> str | None:
    """The broker the user configured, or None (then `run` starts a private one)."""
    return get("broker_url", value)


def scratch_dir() -> Path:
    """Where sandboxes keep their working copies (fast local disk)."""
    return Path(get("scratch"))


def env_name(key: str) -> str:
    """The environment variable of a setting (for help texts)."""
    return setting(key).env


def load_dotenv(path: str | os.PathLike | None = None) -> list[str]:
    """Read the variables (API keys) of a `.env` file into the environment; returns the names set.

    Parsed by python-dotenv (`export`, quotes, escapes, `#` comments, also after a value:
    `KEY=abc # note` is `abc`). Variables already in the environment win. The values are
    never logged or stored.
    """
    from dotenv import dotenv_values

    file = Path(get("dotenv") if path is None or source("dotenv") != "default" else path)
    if not file.is_file():
        return []
    added = []
    for key, value in dotenv_values(file).items():
        if value is None or not key.isidentifier() or key in os.environ:
            continue
        os.environ[key] = value
        added.append(key)
        _from_dotenv.add(key)
    return added
