"""The confined command line of the local backend: bubblewrap, an unprivileged user, limits.

A confined command sees a minimal file system built from nothing: the system folders
(`/usr`, `/etc`, `/opt`, and `/bin`, `/lib*`, `/sbin` as the host has them) read-only, the
Python installations the harness runs on read-only (so the task's virtual environments
work), the sandbox's own folder (working copy, home, /tmp and /var/tmp, its copy of the
task environment) writable, a small /dev/shm, and its harness folder read-only. Nothing else exists in it: not
`/run` or `/var` (no socket of the database, the broker or a container engine), not the
worker's home or working directory (its `.env`), not the dataset, the repository cache,
the logs or any other sandbox. It has no network (`--unshare-net`: loopback is its own),
its own process, IPC and host-name namespaces, and dies with the harness.

Started by root, bubblewrap builds that tree and then drops to a user id that is nobody
*on the host* (`setpriv`: a fresh uid, no groups, every capability gone from all sets, no
new privileges), so the kernel refuses a remount, an unmount or a file of another user.
Started by any other user, bubblewrap runs unprivileged in a user namespace with every
capability dropped and no further user namespaces. `prlimit` puts the per-process limits
(`Limits`) on every command.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .. import settings

UID_BASE = 1_500_000_000  # sandbox users: far above any account or subordinate-id range
UID_SPAN = 1 << 24
SYSTEM_DIRS = ("/usr", "/etc", "/opt")
SHM_BYTES = 256 * 1024 * 1024  # /dev/shm (memory: small, fixed)
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass(frozen=True)
class Limits:
    """What one command of a sandbox may use (0: no limit). Set by the `sandbox_*` settings."""

    memory_mb: int = 0  # writable memory per process (RLIMIT_DATA)
    processes: int = 0  # processes of the sandbox's user at once (RLIMIT_NPROC)
    cpu_seconds: int = 0  # CPU time per process (RLIMIT_CPU)
    file_mb: int = 0  # largest file a command may write (RLIMIT_FSIZE)
    disk_mb: int = 0  # the sandbox's writable folders together, checked after each command

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            memory_mb=settings.get("sandbox_memory_mb"),
            processes=settings.get("sandbox_processes"),
            cpu_seconds=settings.get("sandbox_cpu_seconds"),
            file_mb=settings.get("sandbox_file_mb"),
            disk_mb=settings.get("sandbox_disk_mb"),
        )

    def prlimit(self) -> list[str]:
        """The `prlimit` prefix that sets these limits (empty when none is set)."""
        mib = 1024 * 1024
        args = [
            *([f"--data={self.memory_mb * mib}"] if self.memory_mb else []),
            *([f"--nproc={self.processes}"] if self.processes else []),
            *([f"--cpu={self.cpu_seconds}:{self.cpu_seconds + 5}"] if self.cpu_seconds else []),  # SIGXCPU, then KILL
            *([f"--fsize={self.file_mb * mib}"] if self.file_mb else []),
        ]
        return ["prlimit", *args, "--"] if args else []


def sandbox_uid(key: str | None) -> int:
    """The host user id of a sandbox: one per `key` (a pair's teammates share their remote), else fresh."""
    seed = key.encode() if key else os.urandom(16)
    return UID_BASE + int.from_bytes(hashlib.sha256(seed).digest()[:4], "big") % UID_SPAN


def exposed_paths() -> list[Path]:
    """Read-only places outside the system folders that commands need: the Python installations."""
    return _exposed(tuple(settings.get("sandbox_expose")))


@cache
def _exposed(extra: tuple[str, ...]) -> list[Path]:
    places = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent}
    places |= {Path(p) for p in extra}
    return sorted(p.resolve() for p in places if p.exists() and not _under_system(p.resolve()))


def _under_system(path: Path) -> bool:
    return any(path.is_relative_to(d) for d in SYSTEM_DIRS)


def _dirs_for(path: Path, made: set[Path]) -> list[str]:
    """Create `path`'s missing ancestors in the sandbox's root, traversable by its user."""
    args: list[str] = []
    for parent in reversed(path.parents):
        if parent == Path("/") or parent in made or _under_system(parent):
            continue
        made.add(parent)
        args += ["--perms", "0755", "--dir", str(parent)]
    return args


@dataclass
class Mounts:
    """Where a confined command's writable and read-only folders come from."""

    writable: list[Path]  # the sandbox's own folder, the team remote, caches being prepared
    readonly: list[Path]  # the harness folder (bound over its place inside a writable one)
    tmp: Path  # the sandbox's /tmp
    hidden: list[Path]  # emptied if they fall inside anything bound
    network: bool = False
    views: list[tuple[Path, Path]] = field(default_factory=list)  # (folder, where it is shown), read-only


def bwrap_argv(mounts: Mounts, uid: int, limits: Limits, cwd: str, command: str) -> list[str]:
    """The argv that runs `command` confined (see the module docstring)."""
    options, drop = confining(mounts, uid, limits)
    return [*options, "--chdir", cwd, *drop, "bash", "-c", command]


def confining(mounts: Mounts, uid: int, limits: Limits) -> tuple[list[str], list[str]]:
    """bwrap and its options but `--chdir`; then what drops the user and sets the limits before the
    command. The same for every command of a sandbox: a sandbox works them out once."""
    root = os.geteuid() == 0
    head, tail, made_before = _common(mounts.network, root, tuple(mounts.hidden), tuple(exposed_paths()))
    # the sandbox's /tmp before the Python installations: one of them may lie under /tmp
    argv = [*head, "--bind", str(mounts.tmp), "/tmp", "--bind", str(mounts.tmp), "/var/tmp", *tail]  # on disk
    made = set(made_before)
    for path in mounts.writable:
        argv += [*_dirs_for(path, made), "--bind", str(path), str(path)]
    for path in mounts.readonly:
        argv += ["--ro-bind", str(path), str(path)]
    for source, place in mounts.views:  # after the folder they lie in, so they show over it
        inside = any(place.is_relative_to(p) for p in [*mounts.writable, *mounts.readonly])
        argv += [*([] if inside else _dirs_for(place, made)), "--ro-bind", str(source), str(place)]
    drop: list[str] = []
    if root:
        drop = [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    return argv, [*drop, *limits.prlimit()]


@cache
def _common(network: bool, root: bool, hidden: tuple[Path, ...], exposed: tuple[Path, ...]):
    """The options every sandbox of a process shares, before and after its own /tmp (system folders and
    devices; the Python installations, the harness's hidden places), and the folders they create:
    worked out once per process."""
    argv = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if not network:
        argv.append("--unshare-net")
    if not root:
        argv += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    for d in SYSTEM_DIRS:
        if os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    argv += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]
    argv += ["--perms", "0755", "--dir", "/var"]
    tail: list[str] = []  # after the sandbox's own /tmp
    made: set[Path] = {Path("/tmp"), Path("/var"), Path("/var/tmp")}
    for path in exposed:
        tail += [*_dirs_for(path, made), "--ro-bind", str(path), str(path)]
    seen = [*exposed, *(Path(d) for d in SYSTEM_DIRS)]
    for path in hidden:  # the harness's own places, where they lie inside something bound
        if any(path.is_relative_to(b) for b in seen):
            tail += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
    return tuple(argv), tuple(tail), frozenset(made)


@cache
def unavailable() -> str | None:
    """Why a confined command cannot be made on this machine (bwrap missing, or unable to build its
    namespaces), or None when it can: asked once per process."""
    if shutil.which("bwrap") is None:
        return "bwrap (bubblewrap) is not installed"
    probe = Mounts(writable=[], readonly=[], tmp=Path("/tmp"), hidden=[])
    argv = bwrap_argv(probe, sandbox_uid("probe"), Limits(), "/", "test ! -r /etc/shadow")
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap cannot run here: {exc}"
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        return f"bwrap cannot confine here ({why})"
    return None


def remedy() -> str:
    """What a user can do when `unavailable()` says why commands cannot be confined."""
    return (
        "install bubblewrap (apt-get install bubblewrap), or use --backend docker; "
        f"only for an agent you trust, {settings.env_name('no_bwrap')}=1 runs its commands unconfined"
    )
