"""The artifact store: where patches, trajectories, message logs, test logs, results and an
experiment's travelling inputs are kept, behind one interface.

A store is named by a URL: a folder (a plain path or `file://`) or `gs://bucket/prefix`. Each
scheme is one backend module (`local.py`, `gcs.py`), registered in `BUILTIN`; other packages add
theirs through the `cooperbench.artifact_stores` entry-point group. `open_store(url)` gives the
store behind the retry policy every caller gets: a transient failure (the backend's
`transient` exceptions: network down, 5xx, 429) is retried with exponential backoff
(`artifacts_retries`, `artifacts_backoff` settings, through tenacity); a store still unreachable
after that, or any other failure of the store, is `StoreError`, an infrastructure error for the
caller to record and retry, never a lost artifact. Writes replace the whole object, so writing
the same key again is harmless.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, TypeVar

import tenacity

from ... import settings
from ...errors import UserError

T = TypeVar("T")


class StoreError(Exception):
    """The artifact store failed (unreachable after the retries, refused, ...): an infrastructure error."""


class ArtifactStore(Protocol):
    """One backend. Keys are relative, '/'-separated names ("exp/repo/task0/f1-f2/agent1.patch")."""

    url: str  # the store's root, as given
    transient: tuple[type[BaseException], ...]  # failures worth another try

    def url_of(self, key: str) -> str:
        """The object's full URL (what the database keeps, and `read_url` reads)."""
        ...

    def put_file(self, key: str, path: Path) -> None:
        """Write the local file `path` as `key`, streamed, whole or not at all."""
        ...

    # Optional: `put_bytes(key, data) -> None` writes bytes already in memory, whole or not at all,
    # where that is cheaper than through a file (a local folder); without it they go through a file.

    def get_file(self, key: str, dest: Path) -> bool:
        """Copy `key` into the local file `dest`, streamed; False if there is no such object."""
        ...

    def read(self, key: str, start: int = 0) -> bytes | None:
        """The object's bytes from offset `start` on; None if there is no such object."""
        ...

    def size(self, key: str) -> int | None:
        """The object's size in bytes; None if absent."""
        ...


# The built-in backends by URL scheme; other packages add theirs through entry points.
BUILTIN = {
    "file": "cooperbench.store.backends.local:LocalStore",
    "gs": "cooperbench.store.backends.gcs:GCSStore",
}


@cache
def _registered() -> tuple[tuple[str, str], ...]:
    return tuple((ep.name, ep.value) for ep in entry_points(group="cooperbench.artifact_stores"))


def available() -> dict[str, str]:
    """Every registered scheme -> "module:attribute"."""
    found = dict(BUILTIN)
    for name, value in _registered():
        found.setdefault(name, value)
    return found


def scheme(url: str) -> str:
    head, sep, _ = str(url).partition("://")
    return head if sep else "file"


class Retrying:
    """A backend behind the retry policy: transient failures retried with backoff, then `StoreError`."""

    def __init__(self, inner: ArtifactStore):
        self.inner = inner
        self.url = inner.url

    def _call(self, what: str, fn: Callable[..., T], *args) -> T:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(self.inner.transient),
            stop=tenacity.stop_after_attempt(settings.get("artifacts_retries") + 1),
            wait=tenacity.wait_exponential(multiplier=settings.get("artifacts_backoff"), max=60),
            reraise=True,
        )
        try:
            return retrying(fn, *args)
        except Exception as exc:
            raise StoreError(f"artifact store {self.url}: {what} failed: {type(exc).__name__}: {exc}"[:2000]) from exc

    def url_of(self, key: str) -> str:
        return self.inner.url_of(_checked(key))

    def put_file(self, key: str, path: Path) -> str:
        self._call(f"writing {key}", self.inner.put_file, _checked(key), Path(path))
        return self.url_of(key)

    def get_file(self, key: str, dest: Path) -> bool:
        return self._call(f"reading {key}", self.inner.get_file, _checked(key), Path(dest))

    def read(self, key: str, start: int = 0) -> bytes | None:
        return self._call(f"reading {key}", self.inner.read, _checked(key), start)

    def size(self, key: str) -> int | None:
        return self._call(f"looking up {key}", self.inner.size, _checked(key))

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def put_bytes(self, key: str, data: bytes) -> str:
        direct = getattr(self.inner, "put_bytes", None)
        if direct is not None:
            self._call(f"writing {key}", direct, _checked(key), data)
            return self.url_of(key)
        with _spooled() as path:
            path.write_bytes(data)
            return self.put_file(key, path)

    def put_text(self, key: str, text: str) -> str:
        """Write `text` (agent output: undecodable bytes kept as they came); returns the object's URL."""
        return self.put_bytes(key, text.encode("utf-8", errors="surrogateescape"))

    def put_json(self, key: str, data: Any) -> str:
        """Write `data` as JSON (through a local file, unless the store takes bytes); returns the URL."""
        if getattr(self.inner, "put_bytes", None) is not None:
            return self.put_bytes(key, json.dumps(data, indent=2, sort_keys=True, default=str).encode())
        with _spooled() as path:
            with path.open("w") as f:
                json.dump(data, f, indent=2, sort_keys=True, default=str)
            return self.put_file(key, path)


class _spooled:
    """A private temporary file, removed afterwards (what large objects are streamed from)."""

    def __enter__(self) -> Path:
        fd, name = tempfile.mkstemp(prefix="cooperbench-artifact-")
        os.close(fd)
        self.path = Path(name)
        return self.path

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


def _checked(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StoreError(f"not a valid artifact key: {key!r}")
    return key


def open_store(url: str | os.PathLike) -> Retrying:
    """The store at `url` (a folder, `file://...`, `gs://bucket/prefix`, or a registered scheme)."""
    url = str(url)
    kind = scheme(url)
    if kind not in available():
        _registered.cache_clear()  # a package put on the path since the first look
    known = available()
    if kind not in known:
        raise UserError(f"unknown artifact store {url!r} (known schemes: {', '.join(sorted(known))})")
    module, _, attr = known[kind].partition(":")
    try:
        return Retrying(getattr(import_module(module), attr)(url))
    except ValueError as exc:
        raise UserError(f"bad artifact store {url!r}: {exc}") from None


def read_url(url: str, start: int = 0) -> bytes | None:
    """The bytes of the object a stored URL names (see `ArtifactStore.read`); None if it is absent."""
    parent, _, name = str(url).rstrip("/").rpartition("/")
    if not name:
        return None
    return open_store(parent or "/").read(name, start)


def size_of_url(url: str) -> int | None:
    parent, _, name = str(url).rstrip("/").rpartition("/")
    if not name:
        return None
    return open_store(parent or "/").size(name)
