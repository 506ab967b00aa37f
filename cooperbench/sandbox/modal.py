"""The `modal` backend: one Modal Sandbox per sandbox (written against Modal's documented SDK; not run here).

Same images as the docker backend (`images.py`): the task's published image from its
registry (`modal.Image.from_registry`), else the task's Dockerfile (`from_dockerfile` with
the `BASE_IMAGE` build argument), then the same sanitizing script as a layer of its own,
so every sandbox of a task starts from the cached, sanitized image. Sandboxes have no
network (`block_network=True`) and a hard lifetime (`timeout`). `--git` is not available:
a Modal sandbox cannot reach this host's git server.

Needs `pip install 'cooperbench-farm[modal]'` and a Modal token (`modal token new`).
Settings (`cooperbench config`): modal_app (default "cooperbench"), image_prefix, base_image,
docker_cpus, docker_memory (MiB or "4g"), sandbox_lifetime.
"""

from __future__ import annotations

import math
import posixpath
import shlex
import time

from .. import settings
from ..errors import UserError
from . import ExecResult, SandboxError, images, trim_output


def _modal():
    try:
        import modal
    except ImportError:
        raise UserError("the modal backend needs the modal package: pip install 'cooperbench-farm[modal]'") from None
    return modal


def _memory_mib(value: str | None) -> int | None:
    if not value:
        return None
    value = value.strip().lower()
    scale = {"g": 1024, "m": 1, "k": 1 / 1024}.get(value[-1])
    return int(float(value[:-1]) * scale) if scale else int(value)


class ModalSandbox:
    repo_dir = images.REPO_DIR
    files_dir = images.FILES_DIR
    tmp_dir = "/tmp"

    def __init__(self, sb):
        self.sb = sb
        self._has_runner: bool | None = None

    def exec(self, command: str, *, timeout: float, cwd: str | None = None, confined: bool = True) -> ExecResult:
        start = time.monotonic()
        try:
            proc = self.sb.exec(
                *images.exec_argv(command, timeout), workdir=cwd or self.repo_dir, timeout=int(math.ceil(timeout)) + 60
            )
            out = proc.stdout.read()
            code = proc.wait()
        except Exception as exc:
            raise SandboxError(f"exec in the modal sandbox failed: {exc}") from exc
        out = out.encode("utf-8", "replace") if isinstance(out, str) else (out or b"")
        duration = time.monotonic() - start
        timed_out = code == 137 and duration >= timeout * 0.95
        return ExecResult(-9 if timed_out else int(code), trim_output(out), duration, timed_out)

    def write_file(self, path: str, data: bytes) -> None:
        self.exec(f"mkdir -p {shlex.quote(posixpath.dirname(path))}", timeout=60, confined=False)
        with self.sb.open(path, "wb") as fh:
            fh.write(data)

    def read_file(self, path: str) -> bytes:
        try:
            with self.sb.open(path, "rb") as fh:
                return fh.read()
        except Exception as exc:
            if "not found" in str(exc).lower() or isinstance(exc, FileNotFoundError):
                raise FileNotFoundError(path) from None
            raise

    def test_command(self, task, patch_paths: list[str]) -> str:
        if self._has_runner is None:
            self._has_runner = self.exec(f"test -x {images.RUNNER}", timeout=60).exit_code == 0
        if self._has_runner:
            return images.runner_command(patch_paths)
        missing = f"{task.key}: the image has no runner.sh and the task no run_tests.sh"
        return images.host_runner(self, task, patch_paths, missing)

    def close(self) -> None:
        try:
            self.sb.terminate()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ModalBackend:
    name = "modal"

    def __init__(self, hide=(), **_options):
        self.modal = _modal()
        self.prefix = images.image_prefix()
        self.base = images.base_image()
        self.cpus = settings.get("docker_cpus")
        self.memory = _memory_mib(settings.get("docker_memory"))
        self.lifetime = images.lifetime()
        self.app = self.modal.App.lookup(settings.get("modal_app"), create_if_missing=True)
        self._images: dict[str, object] = {}

    def image_for(self, task):
        """The task's image with the sanitizing layer on top (Modal caches built layers)."""
        if task.key not in self._images:
            Image = self.modal.Image
            published = images.prebuilt_image(task, self.prefix)
            if published:
                image = Image.from_registry(published)
            else:
                try:
                    image = Image.from_dockerfile(
                        str(task.path / "Dockerfile"),
                        context_dir=str(task.path),
                        build_args={"BASE_IMAGE": self.base} if self.base else {},
                        ignore=["feature*"],
                    )
                except TypeError:  # context_dir / build_args / ignore: newer than the oldest modal we accept
                    raise UserError(
                        "building task images on Modal needs a newer modal package "
                        "(pip install -U modal), or a published image"
                    ) from None
            script = images.sanitize_script(task.base_commit)
            self._images[task.key] = image.run_commands(f"bash -c {shlex.quote(script)}").entrypoint([])
        return self._images[task.key]

    def create(self, task, *, labels: dict[str, str], team_remote: str | None = None, environment=None) -> ModalSandbox:
        if environment is not None:
            raise SandboxError("task environments are not available on the modal backend yet")
        if team_remote:
            raise UserError("--git is not available with the modal backend (use --backend docker)")
        extra = {}
        if self.cpus:
            extra["cpu"] = self.cpus
        if self.memory:
            extra["memory"] = self.memory
        try:
            sb = self.modal.Sandbox.create(
                "sleep",
                str(self.lifetime),
                app=self.app,
                image=self.image_for(task),
                timeout=self.lifetime,
                workdir=images.REPO_DIR,
                block_network=True,
                **extra,
            )
        except Exception as exc:
            raise SandboxError(f"cannot start a modal sandbox for {task.key}: {exc}") from exc
        try:
            sb.set_tags({f"cooperbench.{k}": str(v) for k, v in labels.items()})
        except Exception:
            pass  # tags are a convenience for the dashboard
        sandbox = ModalSandbox(sb)
        result = sandbox.exec(f"mkdir -p {images.FILES_DIR}", timeout=120, confined=False)
        if result.exit_code != 0:
            sandbox.close()
            raise SandboxError(f"cannot set up the modal sandbox: {result.output[-300:]}")
        return sandbox
