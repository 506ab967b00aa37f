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
