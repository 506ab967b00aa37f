"""The sandbox boundary: what every backend (local, docker, modal, ...) provides, and the registry.

A sandbox holds one task's repository at its base commit. The harness drives it with
`exec` (commands with a time limit), `write_file` / `read_file` (bytes in and out, never
through shell arguments) and `close`. Commands run `confined` (the default) get what an
agent gets: no network and only the repository writable. Harness commands (git plumbing
for merges) run unconfined, and only on state no confined command has touched: a harness
tool never reads a file an agent could have planted (hooks, filters, attributes).

A new backend is one new module with a `SandboxBackend` class, registered in
`BUILTIN` or through the `cooperbench.sandboxes` entry-point group.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .. import settings
from ..errors import UserError

if TYPE_CHECKING:
    from ..data.dataset import Task


@dataclass
class ExecResult:
    exit_code: int
    output: str  # stdout and stderr, interleaved
    duration: float
    timed_out: bool = False
    limit: str | None = None  # the sandbox limit the command ran into (memory, processes, cpu, file, disk)


MAX_OUTPUT = 4 * 1024 * 1024  # a command's output kept, half from its start and half from its end


class BoundedOutput:
    """A command's output as it streams in, keeping at most MAX_OUTPUT bytes: its start and its end."""

    def __init__(self):
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = False

    def add(self, chunk: bytes) -> None:
        half = MAX_OUTPUT // 2
        if len(self.head) < half:
            take = half - len(self.head)
            self.head += chunk[:take]
            chunk = chunk[take:]
        self.tail += chunk
        if len(self.tail) > half:
            del self.tail[: len(self.tail) - half]
            self.dropped = True

    def text(self) -> str:
        middle = b"\n... [output truncated] ...\n" if self.dropped else b""
        return (bytes(self.head) + middle + bytes(self.tail)).decode("utf-8", "replace")


def trim_output(data: bytes) -> str:
    """A command's output as text, its middle cut out when it is longer than MAX_OUTPUT bytes."""
    if len(data) > MAX_OUTPUT:
        half = MAX_OUTPUT // 2
        data = data[:half] + b"\n... [output truncated] ...\n" + data[-half:]
    return data.decode("utf-8", "replace")


@dataclass(frozen=True)
class Environment:
    """A task's prepared environment, as a sandbox is given it (see `cooperbench.environments`).

    `caches` are host folders of package-manager caches (uv, npm, Go, cargo), made once per
    machine. A sandbox *using* the environment gets a private copy of each (no command of
    it can change the prepared one) and no network; the *preparing* sandbox gets them in
    place, writable, with network. `variables` are set for every command; in their values
    `{<cache name>}` stands for the sandbox's path of that cache and `{sandbox}` for a
    writable folder of the sandbox's own. `path` is put in front of PATH (same placeholders).
    `tools` are host folders of toolchains the farm provides (Go, Node, pnpm at the task's
    versions), shown to every command read-only at the same path.
    """

    caches: dict[str, str]
    variables: dict[str, str]
    path: tuple[str, ...] = ()
    preparing: bool = False
    image: str | None = None  # container backends: the prepared image sandboxes start from (no host caches)
    tools: tuple[str, ...] = ()


class SandboxError(RuntimeError):
    """The sandbox itself failed (could not start, died): an infrastructure failure."""


class ConfinementUnavailable(SandboxError):
    """This machine cannot confine the commands of an agent that must be confined: an infrastructure
    failure (never the agent's, never scored) that a retry on the same machine does not mend."""


@runtime_checkable
class Sandbox(Protocol):
    repo_dir: str  # the task repository, as paths inside the sandbox name it
    files_dir: str  # a harness-owned folder in the sandbox for patches and scripts
    tmp_dir: str  # the sandbox's own temporary folder, as its confined commands name it

    def exec(self, command: str, *, timeout: float, cwd: str | None = None, confined: bool = True) -> ExecResult:
        """Run `command` with bash in the sandbox, `cwd` defaulting to `repo_dir`.

        Contract: whatever the command does (fails, crashes, prints junk, outruns `timeout`) is
        *its* outcome, returned in the `ExecResult` (exit code, output, `timed_out`), never raised.
        `SandboxError` is raised only when the sandbox itself fails (it cannot start the command,
        it died, it was closed meanwhile): an infrastructure failure, retried and never scored.
        Any other exception from a backend is a bug of the backend, and the harness treats it as
        an infrastructure failure too.
        """
        ...

    def write_file(self, path: str, data: bytes) -> None:
        """Write bytes at `path` in the sandbox (a harness path: never through a shell); `SandboxError` if it cannot."""
        ...

    def read_file(self, path: str) -> bytes:
        """The bytes at `path` in the sandbox; `SandboxError` if the sandbox cannot be read."""
        ...

    def close(self) -> None:
        """Remove the sandbox and kill what runs in it; safe to call twice, never raises for a gone sandbox."""
        ...


class SandboxBackend(Protocol):
    name: str

    def create(
        self,
        task: Task,
        *,
        labels: dict[str, str],
        team_remote: str | None = None,
        environment: Environment | None = None,
    ) -> Sandbox:
        """A fresh sandbox holding the task's repository at its base commit.

        `labels` name experiment, pair and agent (for container labels and names);
        `team_remote` (with `--git`) is the location of the pair's shared git remote,
        which the backend makes reachable and adds to the repository as remote `team`;
        `environment` (only passed when the task has one) is the task's prepared environment.
        A backend that cannot provide it raises `SandboxError`.

        Contract: `SandboxError` means the backend could not make the sandbox (engine down,
        image build failed, disk full): an infrastructure failure, retried, never scored.
        `errors.UserError` means the task itself is unusable (a task file refused, an upstream
        that cannot be found): bad input, recorded as such and not retried.
        """
        ...


# The built-in backends, registered here once; other packages add theirs through entry points.
BUILTIN = {
    "local": "cooperbench.sandbox.local:LocalBackend",
    "docker": "cooperbench.sandbox.docker:DockerBackend",
    "modal": "cooperbench.sandbox.modal:ModalBackend",
}


_live: weakref.WeakSet[Sandbox] = weakref.WeakSet()


def track(sandbox: Sandbox) -> Sandbox:
    """Remember an open sandbox of this process, so that an interrupted run can close it."""
    _live.add(sandbox)
    return sandbox


def close_all() -> int:
    """Close every sandbox this process still has open (Ctrl-C); returns how many."""
    closed = 0
    for sandbox in list(_live):
        try:
            sandbox.close()
            closed += 1
        except Exception:  # noqa: BLE001 - closing is best effort on the way out
            pass
    return closed


@cache
def _registered() -> tuple[tuple[str, str], ...]:
    """The entry points of other packages, read once per process (scanning every installed
    distribution's metadata costs tens of milliseconds, and workers ask for every task)."""
    return tuple((ep.name, ep.value) for ep in entry_points(group="cooperbench.sandboxes"))


def available(name: str | None = None) -> dict[str, str]:
    """Every registered name -> "module:attribute". Asked for a `name` the cached view lacks, the
    entry points are read again first: a package installed (or put on the path) since counts."""
    if name is not None and name not in BUILTIN and name not in dict(_registered()):
        _registered.cache_clear()
    found = dict(BUILTIN)
    for name, value in _registered():
        found.setdefault(name, value)
    return found


def get_backend(name: str, **options) -> SandboxBackend:
    """The backend `name`, made with `options`. A backend class that says `reusable = True` (it keeps
    no connection and only reads settings when made) is made once per process, options and settings."""
    known = available(name)
    if name not in known:
        raise UserError(f"unknown sandbox backend {name!r} (known: {', '.join(sorted(known))})")
    module, _, attr = known[name].partition(":")
    cls = getattr(import_module(module), attr)
    if not getattr(cls, "reusable", False):
        return cls(**options)
    key = (known[name], repr(sorted(options.items())), settings.fingerprint())
    with _made_lock:
        if key not in _made:
            _made[key] = cls(**options)
        return _made[key]


_made: dict[tuple, SandboxBackend] = {}  # reusable backends of this process
_made_lock = threading.Lock()
