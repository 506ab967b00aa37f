"""Where things live: dataset, database, logs, caches and broker, from options or environment.

An explicit option wins; then the COOPERBENCH_* environment variable; then a default.
"""

from __future__ import annotations

import os
from pathlib import Path


class UserError(Exception):
    """Bad input from the user: shown as one line, exit code 2, never a traceback."""


def dataset_dir(value: str | os.PathLike | None = None) -> Path:
    return Path(value or os.environ.get("COOPERBENCH_DATASET") or "dataset").resolve()


def db_url(value: str | None = None) -> str:
    return value or os.environ.get("COOPERBENCH_DB_URL") or f"sqlite:///{Path('cooperbench.db').resolve()}"


def logs_dir(value: str | os.PathLike | None = None) -> Path:
    return Path(value or os.environ.get("COOPERBENCH_LOGS") or "logs").resolve()


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cooperbench"
    return Path(os.environ.get("COOPERBENCH_CACHE") or default).resolve()


def broker_url(value: str | None = None) -> str | None:
    """The broker the user configured, or None (then `run` starts a private one)."""
    return value or os.environ.get("COOPERBENCH_BROKER_URL") or None


def scratch_dir() -> Path:
    """Where sandboxes keep their working copies (fast local disk)."""
    return Path(os.environ.get("COOPERBENCH_SCRATCH") or cache_dir() / "sandboxes")


def load_dotenv(path: str | os.PathLike = ".env") -> list[str]:
    """Read `KEY=VALUE` lines (API keys) from a `.env` file into the environment; returns the names set.

    Variables already in the environment win. Lines may start with `export`; values may
    be quoted; `#` starts a comment line. The values are never logged or stored.
    """
    file = Path(os.environ.get("COOPERBENCH_DOTENV") or path)
    if not file.is_file():
        return []
    added = []
    for line in file.read_text(errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if key.isidentifier() and key not in os.environ:
            os.environ[key] = value
            added.append(key)
    return added
