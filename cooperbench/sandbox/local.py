"""The `local` backend: a private working copy per sandbox on this machine.

Confined commands run under bubblewrap as a user that is nobody on the host, with limits
(`confine.py` says exactly what they see). The sandbox's folder holds its working copy,
a private home, its /tmp and its copy of the task environment (`sandbox.Environment`), all
handed to the sandbox's user before its first confined command; its harness folder stays
the harness's, read-only to commands. With `--git`, the pair's team remote (a bare
repository) is writable too and is the working copy's remote `team`; both teammates'
sandboxes run as the same user, which owns it. The step that prepares an environment gets
the caches in place and the network.

Harness commands (`confined=False`) run as the worker but with a clean environment and a
git that reads no system or user configuration and runs no hooks; the harness runs them
only before a confined command has touched the sandbox (after, the working copy belongs to
the sandbox's user and git refuses it). Without bwrap, or where bwrap cannot confine (no
user namespaces), the backend refuses to start (`ConfinementUnavailable`) unless it was made
for a trusted agent (one that runs only the dataset's own code: `gold`, `nop`), whose commands
then run unconfined with a one-line notice; `no_bwrap` makes every agent's unconfined.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from .. import settings
from ..data.repocache import IDENTITY, RepoCache, git
from ..errors import UserError
from ..team.remote import REMOTE_NAME
from . import BoundedOutput, ConfinementUnavailable, Environment, ExecResult, SandboxError
from .confine import Limits, Mounts, confining, remedy, sandbox_uid, unavailable

log = logging.getLogger(__name__)
# the working copy, in a folder named as the published runners of jinja and outlines require of its
# parent ("Repository safety check failed!" elsewhere): their cleanup resets only an agent workspace
REPO = Path("agent_workspace") / "repo"
_warned = False
_warned_tmp = False

# git as the harness runs it: no system or user configuration, no hooks, no fsmonitor, no prompts.
HARNESS_GIT = {
    **IDENTITY,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_COUNT": "3",
    "GIT_CONFIG_KEY_0": "core.hooksPath",
    "GIT_CONFIG_VALUE_0": "/dev/null",
    "GIT_CONFIG_KEY_1": "core.fsmonitor",
    "GIT_CONFIG_VALUE_1": "false",
    "GIT_CONFIG_KEY_2": "protocol.ext.allow",
    "GIT_CONFIG_VALUE_2": "never",
}


def command_path() -> str:
    """The PATH a sandbox's commands get: the farm's own interpreter folder, then the worker's PATH."""
    return os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")])


def _command_env(home: Path) -> dict[str, str]:
    """A clean environment: nothing of the worker's (API keys, tokens) leaks into commands."""
    env = {
        "PATH": command_path(),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    for name in ("PYENV_ROOT", "PYENV_VERSION"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _read_bounded(stream, sink: BoundedOutput) -> None:
    """Read a command's output to its end, keeping a bounded part of it."""
    while chunk := stream.read1(65536):
        sink.add(chunk)


def _limit_hit(code: int, output: str, limits: Limits) -> str | None:
    """Which limit ended a failed command, when its exit tells (a signal) or its output does."""
    if limits.processes and "fork: " in output and "Resource temporarily unavailable" in output:
        return "processes"  # even when the command went on after its forks failed
    if code == 0:
        return None
    if limits.cpu_seconds and code in (128 + signal.SIGXCPU, -signal.SIGXCPU):
        return "cpu"
    if limits.file_mb and (code in (128 + signal.SIGXFSZ, -signal.SIGXFSZ) or "File too large" in output):
        return "file"
    if limits.memory_mb and ("MemoryError" in output or "Cannot allocate memory" in output):
        return "memory"
    return None


def _disk_use(paths: list[Path]) -> int:
    """Bytes the folders take on disk (not following links)."""
    total = 0
    stack = [str(p) for p in paths]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                    except OSError:
                        pass
        except OSError:  # gone meanwhile, or not a folder
            pass
    return total


def _copy(source: Path, target: Path) -> None:
    """Copy a folder as it is (modes, links; shared blocks where the file system can)."""
    subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(target)], check=True, capture_output=True)


def _exited_within(proc: subprocess.Popen, timeout: float) -> bool:
    """Whether the command ended within `timeout` seconds, told the moment it ends.

    `Popen.wait(timeout=)` polls with sleeps that double up to 50 ms, so a 10 ms command was
    seen to end some 5 to 15 ms late; a pidfd becomes readable when the process exits."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd on this kernel or Python: the polling wait
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        with select.epoll() as poll:
            poll.register(fd, select.EPOLLIN)
            return bool(poll.poll(timeout)) or proc.poll() is not None
    finally:
        os.close(fd)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill a command and everything it started (it runs in a session of its own)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class LocalSandbox:
    def __init__(
        self,
        root: Path,
        hidden: list[Path],
        use_bwrap: bool,
        shared: list[Path] = (),
        environment: Environment | None = None,
        *,
        uid: int | None = None,
        limits: Limits | None = None,
        base_snapshot: Path | None = None,
    ):
        self.root = root
        self._real_root = root.resolve()  # its folder as the harness made it (a sandbox's path never changes)
        self.base_snapshot = base_snapshot  # the cache's bare copy of the base commit (`RepoCache.snapshot`)
        self.shared = list(shared)  # writable outside the sandbox: the team remote, caches being prepared
        self.repo_dir = str(root / REPO)
        self.files_dir = str(root / "files")
        self.home = root / "home"
        self.tmp = root / "tmp"
        self.hidden = hidden
        self.use_bwrap = use_bwrap
        # confined, its commands see their own folder at /tmp; unconfined (no bwrap), its real path
        self.tmp_dir = "/tmp" if use_bwrap else str(self.tmp)
        self.uid = uid if uid is not None else sandbox_uid(None)
        self.limits = limits or Limits()
        self.network = bool(environment and environment.preparing)
        self.environment = environment
        self._touched = False  # a confined command has run: the working copy is no longer the harness's
        self._running: set[subprocess.Popen] = set()  # commands still running, killed by close()
        self._confining: tuple[list[str], list[str]] | None = None  # bwrap's options, the user switch
        self._views: list[tuple[Path, Path]] = []  # read-only folders of the harness's shown inside
        self.closed = False
        for d in (self.files_dir, self.home, self.tmp):
            Path(d).mkdir(parents=True, exist_ok=True)
        self.variables = self._environment(environment) if environment else {}

    @property
    def _own_dirs(self) -> list[Path]:
        """The sandbox's writable folders (its user's), besides the shared ones."""
        return [Path(self.repo_dir).parent, self.home, self.tmp, self.root / "env"]

    def _environment(self, environment: Environment) -> dict[str, str]:
        """Give the sandbox the task environment; the variables its commands get."""
        own = self.root / "env"
        own.mkdir(exist_ok=True)
        places = {"sandbox": str(own)}
        for name, source in environment.caches.items():
            if environment.preparing:  # the one writer, under the environment's lock
                Path(source).mkdir(parents=True, exist_ok=True)
                self.shared.append(Path(source).resolve())
                places[name] = str(Path(source).resolve())
            else:  # a private copy: a command can change it, never the prepared one
                target = own / name
                if Path(source).is_dir():
                    _copy(Path(source), target)
                else:
                    target.mkdir()
                places[name] = str(target)
        if self.use_bwrap:  # the provided toolchains, read-only where the host has them
            self._views += [(Path(tool), Path(tool)) for tool in environment.tools]
        variables = {key: value.format(**places) for key, value in environment.variables.items()}
        if environment.path:
            front = os.pathsep.join(p.format(**places) for p in environment.path)
            variables["PATH"] = front + os.pathsep + _command_env(self.home)["PATH"]
        return variables

    def _hand_over(self) -> None:
        """Give the sandbox's user its writable folders (before a confined command, when the worker is root)."""
        if os.geteuid() != 0:
            return
        if self.root.stat().st_uid != self.uid:  # its folder too (runners write next to the copy);
            os.chown(self.root, self.uid, self.uid)  # not the harness folder in it, bound read-only
        stale = []
        for path in [*self._own_dirs, *self.shared]:
            try:
                owner = path.lstat().st_uid
            except FileNotFoundError:
                continue
            if owner != self.uid:  # made or replaced by the harness since: hand it over again
                stale.append(str(path))
        if stale:  # one process for all of them
            subprocess.run(["chown", "-hR", f"{self.uid}:{self.uid}", "--", *stale], check=True)

    def _argv(self, command: str, cwd: str, confined: bool) -> list[str]:
        if not (confined and self.use_bwrap):
            return ["bash", "-c", command]
        if self._confining is None:  # its mounts, user and limits stay the same: worked out once
            mounts = Mounts(
                writable=[self.root, *self.shared],
                readonly=[Path(self.files_dir)],
                views=list(self._views),
                tmp=self.tmp,
                hidden=self.hidden,
                network=self.network,
            )
            self._confining = confining(mounts, self.uid, self.limits)
        options, drop = self._confining
        return [*options, "--chdir", cwd, *drop, "bash", "-c", command]

    def exec(self, command: str, *, timeout: float, cwd: str | None = None, confined: bool = True) -> ExecResult:
        cwd = cwd or self.repo_dir
        start = time.monotonic()
        env = {**_command_env(self.home), **self.variables}
        if not self.use_bwrap:
            env["TMPDIR"] = str(self.tmp)
        if not confined:
            env.update(HARNESS_GIT)
        else:
            self._touched = True
        if confined and self.use_bwrap:
            try:
                self._hand_over()
            except (OSError, subprocess.CalledProcessError) as exc:
                raise SandboxError(f"cannot hand the sandbox {self.root} to its user: {exc}") from exc
        try:
            proc = subprocess.Popen(
                self._argv(command, cwd, confined),
                cwd=cwd if not (confined and self.use_bwrap) else "/",
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:  # its folder is gone (closed, cleaned away) or the machine is out of processes
            raise SandboxError(f"cannot run a command in the sandbox {self.root}: {exc}") from exc
        self._running.add(proc)
        sink = BoundedOutput()
        reader = threading.Thread(target=_read_bounded, args=(proc.stdout, sink), daemon=True)
        reader.start()
        try:
            timed_out = not _exited_within(proc, timeout)
            if timed_out:
                _kill_group(proc)
            proc.wait()
        finally:
            reader.join()
            proc.stdout.close()
            self._running.discard(proc)
        if self.closed:
            raise SandboxError("the sandbox was closed while the command ran")
        code = proc.returncode if not timed_out else -signal.SIGKILL
        output = sink.text()
        limit = _limit_hit(code, output, self.limits) if confined else None
        if confined and self.limits.disk_mb:
            used = _disk_use(self._own_dirs)
            if used > self.limits.disk_mb * 1024 * 1024:
                limit, code = "disk", code or 1
                output += (
                    f"\n[cooperbench] the sandbox uses {used >> 20} MiB, "
                    f"over its disk limit of {self.limits.disk_mb} MiB\n"
                )
        if limit and limit != "disk":
            output += f"\n[cooperbench] the command ran into the sandbox's {limit} limit\n"
        return ExecResult(code, output, time.monotonic() - start, timed_out, limit)

    def _path(self, path: str) -> Path:
        """A path as commands name it, on this machine (a confined command's /tmp is its own folder)."""
        if Path(path).is_relative_to(self.root):  # bound at its own path inside (even under /tmp)
            return Path(path)
        if self.use_bwrap and (path == "/tmp" or path.startswith("/tmp/")):
            return self.tmp / path[len("/tmp/") :] if path != "/tmp" else self.tmp
        return Path(path)

    def _own(self, path: str) -> Path:
        resolved = self._path(path).resolve()
        if not resolved.is_relative_to(self._real_root):
            raise ValueError(f"{path} is outside the sandbox")
        return resolved

    def write_file(self, path: str, data: bytes) -> None:
        target = self._own(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def read_file(self, path: str) -> bytes:
        """A regular file's bytes (never a fifo or device a command left there to hang the harness)."""
        target = self._own(path)
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            raise SandboxError(f"cannot read {path} in the sandbox: {exc.strerror}") from exc
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise SandboxError(f"{path} in the sandbox is not a regular file")
            return f.read()

    def base_snapshot_at(self, dest: str) -> bool:
        """Put the cache's one-commit bare repository of the base at `dest` (a harness folder of this
        sandbox): shown there read-only to confined commands, nothing copied (copied, with no process,
        when commands run unconfined). False when this sandbox has none (the caller clones)."""
        if self.base_snapshot is None:
            return False
        target = self._own(dest)
        if not self.use_bwrap:
            shutil.copytree(self.base_snapshot, target, symlinks=True)
            return True
        target.mkdir(parents=True)  # the mount point, in the harness folder (read-only to commands)
        self._views.append((self.base_snapshot, target))
        self._confining = None  # worked out again, with it
        return True

    def fork(self) -> LocalSandbox:
        """A new sandbox (own user, home, temporary folder and copy of the environment) whose working
        copy is a copy of this one's. Only while no confined command has run here: the copy is the
        harness's, so the harness may still run git in it."""
        if self.shared or self._touched:
            raise SandboxError("only a sandbox no command has run in, with no team remote, can be forked")
        root = self.root.with_name(f"{self.root.name.rpartition('-')[0] or 'sandbox'}-{uuid.uuid4().hex[:8]}")
        try:
            root.mkdir()
            (root / REPO).parent.mkdir()
            _copy(Path(self.repo_dir), root / REPO)
            return LocalSandbox(
                root,
                self.hidden,
                self.use_bwrap,
                (),
                self.environment,
                limits=self.limits,
                base_snapshot=self.base_snapshot,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise SandboxError(f"cannot fork the sandbox {self.root}: {exc}") from exc

    def close(self) -> None:
        self.closed = True
        for proc in list(self._running):
            _kill_group(proc)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LocalBackend:
    name = "local"
    reusable = True  # settings read when made, no connection: `get_backend` makes one per process

    def __init__(
        self, cache: RepoCache | None = None, scratch: Path | None = None, hide: list[Path] = (), trusted: bool = False
    ):
        self.cache = cache or RepoCache()
        self.scratch = Path(scratch or settings.scratch_dir())
        default_hidden = [
            self.cache.root,
            self.scratch,
            settings.dataset_dir(),
            settings.logs_dir(),
        ]  # and other sandboxes
        db = settings.db_url()
        if db.startswith("sqlite:///"):
            default_hidden.append(Path(db[len("sqlite:///") :]))
        self.hidden = sorted({Path(p).resolve() for p in [*default_hidden, *hide]})
        self.use_bwrap = not settings.get("no_bwrap")
        self.limits = Limits.from_settings()
        global _warned, _warned_tmp
        if self.use_bwrap and (why := unavailable()) is not None:
            if not trusted:
                raise ConfinementUnavailable(f"cannot confine agent commands on this machine: {why}; {remedy()}")
            self.use_bwrap = False  # a trusted agent's commands are the dataset's own code
            if not _warned:
                _warned = True
                log.warning("%s: the trusted agent's commands and tests run unconfined", why)
        if self.use_bwrap and self.scratch.resolve().is_relative_to("/tmp") and not _warned_tmp:
            _warned_tmp = True  # its /tmp is the sandbox's own, and the path to the sandbox runs through it
            log.warning(
                "sandboxes under /tmp (%s): a command that cleans /tmp (pytest's old temporary folders) "
                "can reach its own working copy; set %s to a folder outside /tmp",
                self.scratch,
                settings.env_name("scratch"),
            )
        if not self.use_bwrap and not _warned:
            _warned = True
            log.warning("%s is set: local sandboxes run agent commands unconfined", settings.env_name("no_bwrap"))

    def create(
        self,
        task,
        *,
        labels: dict[str, str],
        team_remote: str | None = None,
        environment: Environment | None = None,
    ) -> LocalSandbox:
        name = "-".join(v for v in (labels.get("pair"), labels.get("agent")) if v).replace("/", "_")
        root = self.scratch / f"{name or 'sandbox'}-{uuid.uuid4().hex[:8]}"
        shared = [Path(team_remote).resolve()] if team_remote else []
        try:
            root.mkdir(parents=True)
            self.cache.checkout(task.repo_url, task.base_commit, root / REPO)
            if team_remote:
                git("remote", "add", REMOTE_NAME, str(shared[0]), cwd=root / REPO)
        except Exception as exc:
            shutil.rmtree(root, ignore_errors=True)
            if isinstance(exc, UserError):
                raise
            raise SandboxError(f"cannot create local sandbox for {task.key}: {exc}") from exc
        uid = sandbox_uid(str(shared[0]) if shared else None)  # teammates share their remote, so their user
        try:
            if shared and os.geteuid() == 0 and self.use_bwrap:
                subprocess.run(["chown", "-hR", f"{uid}:{uid}", str(shared[0])], check=True)
            return LocalSandbox(
                root,
                self.hidden,
                self.use_bwrap,
                shared,
                environment,
                uid=uid,
                limits=self.limits,
                base_snapshot=self.cache.snapshot(task.repo_url, task.base_commit),
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise SandboxError(f"cannot give the sandbox of {task.key} its environment: {exc}") from exc
