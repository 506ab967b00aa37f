"""The `local` backend: a private working copy per sandbox on this machine.

When bubblewrap (`bwrap`) is installed, confined commands run inside it: no network,
the whole file system read-only, the sandbox's own folder (working copy, a private home,
/tmp, its copy of the task environment) the only writable place but for the harness folder
(read-only), and the repository cache, dataset (gold patches), logs and database hidden.
With `--git`, the pair's team remote (a bare repository) is writable too and is the
working copy's remote `team`. A task's prepared environment (`sandbox.Environment`) is
copied into the sandbox, so nothing a command does reaches the prepared one; the step that
prepares it gets the caches in place and the network. Without bwrap, commands run as plain
processes and a warning says so once.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from .. import settings
from ..data.repocache import RepoCache, git
from ..errors import UserError
from ..team.remote import REMOTE_NAME
from . import Environment, ExecResult, SandboxError, trim_output

log = logging.getLogger(__name__)
_warned = False
_warned_tmp = False


def _command_env(home: Path) -> dict[str, str]:
    """A clean environment: nothing of the worker's (API keys, tokens) leaks into commands."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")])
    env = {
        "PATH": path,
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
    ):
        self.root = root
        self.shared = list(shared)  # writable outside the sandbox: the team remote, caches being prepared
        self.repo_dir = str(root / "repo")
        self.files_dir = str(root / "files")
        self.home = root / "home"
        self.tmp = root / "tmp"
        self.hidden = hidden
        self.use_bwrap = use_bwrap
        self.network = bool(environment and environment.preparing)
        self._running: set[subprocess.Popen] = set()  # commands still running, killed by close()
        self.closed = False
        for d in (self.files_dir, self.home, self.tmp):
            Path(d).mkdir(parents=True, exist_ok=True)
        self.variables = self._environment(environment) if environment else {}

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
                    subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(target)], check=True)
                else:
                    target.mkdir()
                places[name] = str(target)
        variables = {key: value.format(**places) for key, value in environment.variables.items()}
        if environment.path:
            front = os.pathsep.join(p.format(**places) for p in environment.path)
            variables["PATH"] = front + os.pathsep + _command_env(self.home)["PATH"]
        return variables

    def _argv(self, command: str, cwd: str, confined: bool) -> list[str]:
        if not (confined and self.use_bwrap):
            return ["bash", "-c", command]
        argv = [
            "bwrap",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            *([] if self.network else ["--unshare-net"]),
            "--unshare-pid",
            "--unshare-ipc",
            "--die-with-parent",
            "--new-session",
        ]
        for path in self.hidden:
            if path.is_dir():
                argv += ["--tmpfs", str(path)]
            elif path.exists():
                argv += ["--ro-bind", "/dev/null", str(path)]
        # /tmp first: the sandbox itself may live under /tmp, and later binds land on top.
        argv += [
            "--bind",
            str(self.tmp),
            "/tmp",
            "--bind",
            str(self.root),
            str(self.root),
            "--ro-bind",
            self.files_dir,
            self.files_dir,
            *[arg for path in self.shared for arg in ("--bind", str(path), str(path))],
            "--chdir",
            cwd,
            "bash",
            "-c",
            command,
        ]
        return argv

    def exec(self, command: str, *, timeout: float, cwd: str | None = None, confined: bool = True) -> ExecResult:
        cwd = cwd or self.repo_dir
        start = time.monotonic()
        env = {**_command_env(self.home), **self.variables}
        if not confined:
            env = {**os.environ, **env}
        try:
            proc = subprocess.Popen(
                self._argv(command, cwd, confined),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:  # its folder is gone (closed, cleaned away) or the machine is out of processes
            raise SandboxError(f"cannot run a command in the sandbox {self.root}: {exc}") from exc
        self._running.add(proc)
        try:
            out, _ = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, _ = proc.communicate()
            timed_out = True
        finally:
            self._running.discard(proc)
        if self.closed:
            raise SandboxError("the sandbox was closed while the command ran")
        code = proc.returncode if not timed_out else -signal.SIGKILL
        return ExecResult(code, trim_output(out), time.monotonic() - start, timed_out)

    def _own(self, path: str) -> Path:
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise ValueError(f"{path} is outside the sandbox")
        return resolved

    def write_file(self, path: str, data: bytes) -> None:
        target = self._own(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def read_file(self, path: str) -> bytes:
        return self._own(path).read_bytes()

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

    def __init__(self, cache: RepoCache | None = None, scratch: Path | None = None, hide: list[Path] = ()):
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
        self.use_bwrap = shutil.which("bwrap") is not None and not settings.get("no_bwrap")
        global _warned, _warned_tmp
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
            log.warning(
                "bwrap not found: local sandboxes run agent commands without isolation "
                "(install bubblewrap to confine them)"
            )

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
            self.cache.checkout(task.repo_url, task.base_commit, root / "repo")
            if team_remote:
                git("remote", "add", REMOTE_NAME, str(shared[0]), cwd=root / "repo")
        except Exception as exc:
            shutil.rmtree(root, ignore_errors=True)
            if isinstance(exc, UserError):
                raise
            raise SandboxError(f"cannot create local sandbox for {task.key}: {exc}") from exc
        try:
            return LocalSandbox(root, self.hidden, self.use_bwrap, shared, environment)
        except (OSError, subprocess.CalledProcessError) as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise SandboxError(f"cannot give the sandbox of {task.key} its environment: {exc}") from exc
