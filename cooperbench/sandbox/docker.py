"""The `docker` backend: one container per sandbox, on any Docker-API engine (Docker, podman's service).

The engine is the one `DOCKER_HOST` names (or the default socket). Per task, the image is
the published one (pulled once) or built from the task's Dockerfile once, then sanitized
once (see `images.py`) and committed; every sandbox of the task starts from that image with
its entrypoint replaced by `sleep <lifetime>`, so a forgotten container dies by itself.
Sandboxes have no network at all; with `--git` they join only a private internal network
whose one other member is this host's git server for the pairs' shared remotes. Every
container is labelled with its experiment, pair, agent, role and owner (host, pid): `gc()`
in `gc.py` removes those whose owner process is gone.

Containers run with no new privileges, a few capabilities dropped, a process limit
(`sandbox_processes`) and a memory limit (`docker_memory`, else `sandbox_memory_mb`);
confined commands get the per-process limits of `confine.Limits` through `prlimit`.

Settings (`cooperbench config`): image_prefix, base_image, docker_cpus, docker_memory (e.g. "4g"),
sandbox_lifetime, sandbox_*.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import logging
import math
import os
import re
import shlex
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

from .. import settings
from ..data.repocache import _locked
from ..errors import UserError
from . import BoundedOutput, ExecResult, SandboxError, dockerfile, images
from .confine import Limits
from .dockerfile import BuildSupply

log = logging.getLogger(__name__)
LABEL = "cooperbench"
OWNER = "cooperbench.owner"
GIT_NETWORK = "cooperbench-git-net"
GIT_BASE = "/srv/git"
# capabilities no task needs and an escape would (raw sockets, device nodes, chroot, file capabilities)
DROPPED_CAPS = ["NET_RAW", "MKNOD", "SYS_CHROOT", "SETFCAP", "AUDIT_WRITE"]
_made: dict[tuple, str] = {}  # (engine, task key, base image) -> sanitized image, in this process
_pull_failed: set[str] = set()
_live: dict[str, DockerSandbox] = {}
_live_lock = threading.Lock()


def _docker():
    try:
        import docker
    except ImportError:
        raise UserError("the docker backend needs the docker package: pip install 'docker>=7'") from None
    return docker


def connect():
    """A client of the engine DOCKER_HOST names; SandboxError if it does not answer."""
    docker = _docker()
    try:
        client = docker.from_env(timeout=600, version="auto")  # an older engine's API version too
        client.ping()
    except Exception as exc:
        raise SandboxError(
            f"no container engine at {os.environ.get('DOCKER_HOST') or 'the default socket'}: {exc}"
        ) from None
    return client


def _start_time(pid: int) -> str:
    """The pid's start time (clock ticks after boot), "" for a zombie or no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return "" if fields[0] in ("Z", "X") else fields[19]


def owner() -> str:
    """This process as a container owner: host, pid and the pid's start time (pids are reused)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _name(labels: dict[str, str]) -> str:
    parts = [labels.get("pair"), labels.get("agent") or labels.get("role")]
    slug = re.sub(r"[^a-zA-Z0-9_.-]+", "_", "-".join(p for p in parts if p))[:80]
    return f"cb-{slug or 'sandbox'}-{uuid.uuid4().hex[:8]}"


_ERROR_LINE = re.compile(r"error|not found|cannot|can't|could not|failed|denied|unable", re.I)


def _build_failure(exc: Exception, lines: list[str]) -> str:
    """Why a build failed, short: the engine's message and the last lines of output naming an error."""
    what = " ".join(str(exc).split())[:300]
    output = [" ".join(x.split())[:200] for chunk in lines for x in chunk.splitlines() if x.strip()]
    named = [x for x in output if _ERROR_LINE.search(x)]
    first = [x for x in named if re.match(r"(error|fatal|E)\b:?", x, re.I)][:3]  # the cause, before its echoes
    errors = list(dict.fromkeys(first + named[-3:])) or output[-3:]
    return what + (" | " + " | ".join(errors) if errors else "")


def _unpulled_base(failure: str) -> str | None:
    """The `FROM` image a build failed to pull, as the build's own output names it (None: another failure)."""
    found = re.search(r"Trying to pull (\S+?)\.\.\.", failure) or re.search(r"pull access denied for (\S+?),", failure)
    if found is None or not re.search(r"pull|registry|manifest", failure, re.I):
        return None
    return found.group(1)


def _host_lock(name: str):
    """A lock shared by every process of this host (whatever their cache folders)."""
    return _locked(Path(tempfile.gettempdir()) / "cooperbench-docker" / name)


class DockerSandbox:
    repo_dir = images.REPO_DIR
    files_dir = images.FILES_DIR
    tmp_dir = "/tmp"

    def __init__(self, client, container, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.client = client
        self.container = container
        self.id = container.id
        self.name = container.name
        self._has_runner: bool | None = None
        with _live_lock:
            _live[self.id] = self

    def exec(self, command: str, *, timeout: float, cwd: str | None = None, confined: bool = True) -> ExecResult:
        # The container itself is the confinement; confined commands get the per-process limits too.
        docker = _docker()
        limit = max(1, math.ceil(timeout))
        argv = images.exec_argv(command, timeout, self.limits.prlimit() if confined else [])
        api = docker.APIClient(
            version=self.client.api.api_version, timeout=limit + 120, **docker.utils.kwargs_from_env()
        )
        start = time.monotonic()
        try:
            exec_id = api.exec_create(self.id, argv, workdir=cwd or self.repo_dir)["Id"]
            out = BoundedOutput()  # never more than MAX_OUTPUT in memory, whatever the command prints
            for chunk in api.exec_start(exec_id, stream=True):
                out.add(chunk)
            code = api.exec_inspect(exec_id)["ExitCode"]
        except docker.errors.NotFound:
            raise SandboxError(f"sandbox container {self.name} is gone (lifetime over or removed)") from None
        except Exception as exc:
            raise SandboxError(f"exec in {self.name} failed: {exc}") from exc
        finally:
            api.close()
        duration = time.monotonic() - start
        timed_out = code == 137 and duration >= timeout * 0.95
        return ExecResult(-9 if timed_out else int(code if code is not None else -1), out.text(), duration, timed_out)

    def write_file(self, path: str, data: bytes) -> None:
        path = os.path.normpath(path)
        try:
            ok = self.container.put_archive("/", images.tar_one(path, data))
        except Exception as exc:
            raise SandboxError(f"cannot write {path} in {self.name}: {exc}") from exc
        if not ok:
            raise SandboxError(f"cannot write {path} in {self.name}")

    def read_file(self, path: str) -> bytes:
        docker = _docker()
        try:
            stream, _ = self.container.get_archive(path)
            return images.untar_one(b"".join(stream))
        except docker.errors.NotFound:
            raise FileNotFoundError(path) from None

    def test_command(self, task, patch_paths: list[str]) -> str:
        """The image's runner.sh when it has one, else the task's run_tests.sh copied in."""
        if self._has_runner is None:
            self._has_runner = self.exec(f"test -x {images.RUNNER}", timeout=60).exit_code == 0
        if self._has_runner:
            return images.runner_command(patch_paths)
        missing = f"{task.key}: the image has no runner.sh and the task no run_tests.sh"
        return images.host_runner(self, task, patch_paths, missing)

    def close(self) -> None:
        with _live_lock:
            _live.pop(self.id, None)
        try:
            self.container.remove(force=True)
        except _docker().errors.NotFound:
            pass
        except Exception as exc:
            log.warning("cannot remove container %s (cooperbench sandbox gc will): %s", self.name, exc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@atexit.register
def remove_held_containers() -> None:
    """Remove every container this process still holds (at exit; call it before an `os._exit`)."""
    with _live_lock:
        live = list(_live.values())
    for sandbox in live:
        sandbox.close()


class DockerBackend:
    name = "docker"

    def __init__(self, hide=(), client=None, **_options):
        # `hide` means nothing here: containers never see the host's files.
        self._client = client
        self.prefix = images.image_prefix()
        self.base = images.base_image()
        cpus = settings.get("docker_cpus")
        self.nano_cpus = int(cpus * 1e9) if cpus else None
        self.memory = settings.get("docker_memory")
        self.limits = Limits.from_settings()
        self.lifetime = images.lifetime()

    @property
    def client(self):
        if self._client is None:
            self._client = connect()
        return self._client

    # ---- images -------------------------------------------------------------------------

    def _exists(self, ref: str) -> bool:
        try:
            self.client.images.get(ref)
            return True
        except _docker().errors.ImageNotFound:
            return False

    def _pull(self, ref: str) -> bool:
        if ref in _pull_failed:
            return False
        repo, _, tag = ref.rpartition(":")
        log.info("pulling %s", ref)
        last = 0.0
        try:
            for event in self.client.api.pull(repo, tag=tag, stream=True, decode=True):
                if "error" in event:
                    raise RuntimeError(event["error"])
                if time.monotonic() - last > 10:
                    last = time.monotonic()
                    log.info("pulling %s: %s %s", ref, event.get("status", ""), event.get("progress", ""))
            ok = self._exists(ref)
        except Exception as exc:
            log.warning("cannot pull %s (building from the task's Dockerfile instead): %s", ref, exc)
            ok = False
        if not ok:
            _pull_failed.add(ref)
        return ok

    def _supply(self, task) -> BuildSupply:
        url = task.repo_url
        remote = re.match(r"^(https?|git|ssh)://", url) is not None
        slug = re.sub(r"[^A-Za-z0-9_.-]", "-", url.rstrip("/").removesuffix(".git").rsplit("/", 1)[-1])
        return BuildSupply(
            mirror=dockerfile.mirror(),
            ca_bundle=dockerfile.ca_bundle(),
            upstream_url=url if remote else None,
            upstream_slug=slug if remote else None,
        )

    def _build(self, task) -> str:
        supply = self._supply(task)
        tag = images.build_tag(task, self.base, supply)
        if self._exists(tag):
            return tag
        if not (task.path / "Dockerfile").is_file():
            raise SandboxError(f"{task.key}: no published image and no Dockerfile to build one")
        log.info("building %s from %s", tag, task.path / "Dockerfile")
        lines: list[str] = []
        with tempfile.TemporaryDirectory(prefix="cooperbench-build-") as tmp:
            upstream = None
            if supply.upstream_url:  # the clone the Dockerfile makes, from the repository cache
                from ..data.repocache import RepoCache, git

                upstream = Path(tmp) / "upstream.git"
                base = RepoCache().base(supply.upstream_url, task.base_commit)
                git("clone", "--bare", "--quiet", "--no-local", str(base), str(upstream))
            context = images.build_context(task.path, supply, upstream)
        try:
            for chunk in self.client.api.build(
                fileobj=io.BytesIO(context),
                custom_context=True,
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                buildargs={"BASE_IMAGE": self.base} if self.base else None,
            ):
                if "error" in chunk:
                    raise RuntimeError(chunk["error"])
                if chunk.get("stream"):
                    lines.append(chunk["stream"])
        except Exception as exc:
            log.warning("building the image of %s failed: %s\n%s", task.key, exc, "".join(lines)[-4000:])
            why = _build_failure(exc, lines)
            if (base := _unpulled_base(why)) is not None:  # say which image, and the setting that helps
                mirror = settings.env_name("registry_mirror")
                why = f"its base image {base} cannot be pulled here (set {mirror} to a mirror that has it): {why}"
            raise SandboxError(f"cannot build the image of {task.key}: {why}") from exc
        if not self._exists(tag):
            raise SandboxError(f"building the image of {task.key} left no image {tag}:\n{''.join(lines)[-2000:]}")
        return tag

    def _sanitize(self, task, source: str) -> str:
        source_id = self.client.images.get(source).id
        tag = images.sanitized_tag(task, source_id)
        if self._exists(tag):
            return tag
        log.info("sanitizing the repository of %s into %s", source, tag)
        script = images.sanitize_script(task.base_commit)
        self._run_and_commit(
            source, tag, script, "sanitize", f"cannot sanitize the repository of {source}", 1800, network_mode="none"
        )
        return tag

    def _run_and_commit(
        self,
        source: str,
        tag: str,
        script: str,
        role: str,
        failed: str,
        timeout: float,
        files=None,
        late_is_failure: bool = False,
        **options,
    ) -> None:
        """Run `script` (bash) in a new container of `source`, after writing `files` (path -> bytes)
        into it, and commit the container as `tag`; SandboxError (`failed`, the exit code and the
        output's end) if the script fails, or (`late_is_failure`) runs past `timeout`.
        The container is removed either way."""
        container = self.client.containers.create(
            source,
            entrypoint=["bash", "-c"],
            command=[script],
            labels={LABEL: "1", f"{LABEL}.role": role, OWNER: owner()},
            name=f"cb-{role}-{uuid.uuid4().hex[:8]}",
            **options,
        )
        try:
            if files and not container.put_archive("/", images.tar_files(files)):
                raise SandboxError(f"{failed}: cannot copy its files into {container.name}")
            container.start()
            try:
                status = container.wait(timeout=timeout).get("StatusCode")
            except Exception as exc:
                if not late_is_failure:
                    raise
                raise SandboxError(f"{failed}: not finished within {timeout:.0f} s: {exc}") from exc
            if status != 0:
                output = container.logs().decode("utf-8", "replace")
                raise SandboxError(f"{failed} (exit {status}): {output[-1500:]}")
            repo, _, version = tag.rpartition(":")
            container.commit(repository=repo, tag=version)
        finally:
            container.remove(force=True)

    def prepare_image(self, source: str, tag: str, *, files: dict[str, bytes], script: str, timeout: float) -> str:
        """Run `script` in a container of `source` **with network**, then commit it as `tag`: a task
        environment's preparing step (only the dataset's own runner and patches run there).
        `files` are written first (path -> bytes). Raises SandboxError with the output's end."""
        if self._exists(tag):
            return tag
        self._run_and_commit(
            source,
            tag,
            script,
            "prepare",
            f"preparing in {source} failed",
            timeout,
            files,
            late_is_failure=True,
            working_dir=images.REPO_DIR,
            security_opt=["no-new-privileges"],
            cap_drop=DROPPED_CAPS,
        )
        return tag

    def has_image(self, tag: str) -> bool:
        return self._exists(tag)

    def image_size(self, tag: str) -> int:
        return int(self.client.images.get(tag).attrs.get("Size") or 0)

    def remove_image(self, tag: str) -> None:
        """Delete an image this farm made (an environment's); gone already is fine. One that running
        sandboxes use is not forced away from under them: SandboxError."""
        docker = _docker()
        try:
            self.client.images.remove(tag)
        except docker.errors.NotFound:  # podman says 404 without Docker's "No such image"
            pass
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot remove the image {tag} (sandboxes still use it?): {exc}") from None

    def image_for(self, task) -> str:
        """The sanitized image of the task (made once; shared by every sandbox of the task)."""
        key = (self.client.api.base_url, task.key, task.base_commit, self.base, self.prefix, dockerfile.mirror())
        if key in _made:
            return _made[key]
        with _host_lock(hashlib.sha256(repr(key).encode()).hexdigest()[:16]):
            published = images.prebuilt_image(task, self.prefix)
            if published and (self._exists(published) or self._pull(published)):
                source = published
            else:
                source = self._build(task)
            _made[key] = self._sanitize(task, source)
        return _made[key]

    # ---- the pairs' git server (--git) ---------------------------------------------------

    def _git_network(self):
        """The private network of agents and git servers: internal, and with no address of the host
        on it (podman: no DNS server on the bridge; Docker: `inhibit_ipv4`), so the git server is
        the only peer an agent can reach."""
        docker = _docker()
        try:
            return self.client.networks.get(GIT_NETWORK)
        except docker.errors.NotFound:
            pass
        labels = {LABEL: "1", f"{LABEL}.service": "git"}
        engine = {c.get("Name") for c in self.client.version().get("Components", [])}
        try:
            if "Podman Engine" in engine:
                api = self.client.api
                body = {
                    "name": GIT_NETWORK,
                    "driver": "bridge",
                    "internal": True,
                    "dns_enabled": False,
                    "labels": labels,
                }
                api._raise_for_status(api._post_json(api.base_url + "/v4.0.0/libpod/networks/create", data=body))
            else:
                self.client.networks.create(
                    GIT_NETWORK,
                    driver="bridge",
                    internal=True,
                    labels=labels,
                    options={"com.docker.network.bridge.inhibit_ipv4": "true"},
                )
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: another worker made it meanwhile
                raise
        return self.client.networks.get(GIT_NETWORK)

    def git_server(self, root: Path, image: str) -> tuple[str, str]:
        """The host's git server for the remotes under `root` (made once): its name and address."""
        docker = _docker()
        name = f"cooperbench-git-{hashlib.sha256(str(root).encode()).hexdigest()[:10]}"
        with _host_lock(name):
            self._git_network()
            try:
                server = self.client.containers.get(name)
                if server.status != "running":
                    server.remove(force=True)
                    server = None
            except docker.errors.NotFound:
                server = None
            if server is None:
                root.mkdir(parents=True, exist_ok=True)
                daemon = (
                    f"git config --system --add safe.directory '*' 2>/dev/null; exec git daemon --reuseaddr "
                    f"--export-all --enable=receive-pack --base-path={GIT_BASE} {GIT_BASE}"
                )
                server = self.client.containers.run(
                    image,
                    entrypoint=["sh", "-c"],
                    command=[daemon],
                    name=name,
                    detach=True,
                    network=GIT_NETWORK,
                    volumes={str(root): {"bind": GIT_BASE, "mode": "rw"}},
                    stop_signal="SIGKILL",
                    labels={
                        LABEL: "1",
                        f"{LABEL}.service": "git",
                        f"{LABEL}.role": "git-server",
                        OWNER: "",
                        f"{LABEL}.host": socket.gethostname(),
                        f"{LABEL}.git-root": str(root),
                    },
                )
                # (every label set: images carry the sanitizer's)
                probe = "exec 3<>/dev/tcp/127.0.0.1/9418"
                for _ in range(100):
                    if server.exec_run(["bash", "-c", probe]).exit_code == 0:
                        break
                    time.sleep(0.1)
                else:
                    raise SandboxError(f"the git server {name} did not start: {server.logs()[-1000:]!r}")
            server.reload()
            address = server.attrs["NetworkSettings"]["Networks"][GIT_NETWORK]["IPAddress"]
        return name, address

    # ---- sandboxes ------------------------------------------------------------------------

    def create(
        self, task, *, labels: dict[str, str], team_remote: str | None = None, environment=None
    ) -> DockerSandbox:
        if environment is not None and (environment.caches or environment.preparing or not environment.image):
            raise SandboxError("the docker backend takes a task environment as a prepared image only")
        try:
            return self._create(task, labels, team_remote, environment)
        except _docker().errors.ImageNotFound:  # someone removed the image: make it again, once
            _made.clear()
            if environment is not None:
                raise SandboxError(
                    f"the environment image {environment.image} of {task.key} is gone: "
                    "`cooperbench env prepare --backend docker --force` makes it again"
                ) from None
            return self._create(task, labels, team_remote, environment)

    def _create(self, task, labels: dict[str, str], team_remote: str | None, environment=None) -> DockerSandbox:
        from ..team.remote import REMOTE_NAME, remote_root

        docker = _docker()
        try:
            image = environment.image if environment is not None else self.image_for(task)
            network: dict = {"network_mode": "none"}
            url = None
            if team_remote:
                root = remote_root()
                remote = Path(team_remote).resolve()
                if not remote.is_relative_to(root):
                    raise SandboxError(f"team remote {remote} is not under {root}")
                server, address = self.git_server(root, image)
                network = {"network": GIT_NETWORK, "extra_hosts": {server: address}}
                url = f"git://{server}/{remote.relative_to(root)}"
            extra = (
                {"mem_limit": self.memory or f"{self.limits.memory_mb}m"}
                if self.memory or self.limits.memory_mb
                else {}
            )
            if self.nano_cpus:
                extra["nano_cpus"] = self.nano_cpus
            if self.limits.processes:
                extra["pids_limit"] = self.limits.processes
            all_labels = {
                LABEL: "1",
                OWNER: owner(),
                f"{LABEL}.role": labels.get("role", "agent"),
                **{f"{LABEL}.{k}": str(labels[k]) for k in ("experiment", "pair", "agent") if k in labels},
            }
            container = self.client.containers.run(
                image,
                entrypoint=["sleep"],
                command=[str(self.lifetime)],
                detach=True,
                name=_name(labels),
                labels=all_labels,
                working_dir=images.REPO_DIR,
                hostname="sandbox",
                stop_signal="SIGKILL",
                security_opt=["no-new-privileges"],
                cap_drop=DROPPED_CAPS,
                environment=dict(environment.variables) if environment is not None else None,
                **network,
                **extra,
            )
        except (SandboxError, UserError, docker.errors.ImageNotFound):
            raise
        except docker.errors.DockerException as exc:
            raise SandboxError(f"cannot start a container for {task.key}: {exc}") from exc
        sandbox = DockerSandbox(self.client, container, self.limits)
        try:
            setup = f"mkdir -p {shlex.quote(images.FILES_DIR)}"
            if url:
                setup += " && " + images.team_remote_command(url).replace(" team ", f" {REMOTE_NAME} ")
            result = sandbox.exec(setup, timeout=120, confined=False)
            if result.exit_code != 0:
                raise SandboxError(f"cannot set up sandbox {sandbox.name}: {result.output.strip()[-300:]}")
        except BaseException:
            sandbox.close()
            raise
        return sandbox
