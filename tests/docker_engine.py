"""Fixtures and helpers for the tests that need a real Docker-API engine (podman's service in CI).

The engine is the one DOCKER_HOST names (`bash .ci/podman.sh` sets one up). Under CI
(CI=true) a missing engine fails the tests; elsewhere they skip, saying why.
"""

from __future__ import annotations

import os

import pytest

BASE_IMAGE = os.environ.get("COOPERBENCH_TEST_BASE_IMAGE", "cooperbench-base:bookworm")
ENV = {
    "COOPERBENCH_IMAGE_PREFIX": "",
    "COOPERBENCH_BASE_IMAGE": BASE_IMAGE,
    "COOPERBENCH_DOCKER_CPUS": "1",
    "COOPERBENCH_DOCKER_MEMORY": "1g",
    "COOPERBENCH_SANDBOX_LIFETIME": "1800",
}


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs a container engine: {reason} (run `bash .ci/podman.sh` and export DOCKER_HOST)")
    pytest.skip(f"no container engine: {reason}")


@pytest.fixture(scope="module")
def engine():
    """A client of the engine, with the backend's settings for the bundled dataset in the environment."""
    try:
        import docker
    except ImportError:
        _unavailable("the docker package is not installed")
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:
        _unavailable(f"{os.environ.get('DOCKER_HOST') or 'default socket'}: {exc}")
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        _unavailable(f"the base image {BASE_IMAGE} is missing (bash .ci/podman.sh makes it)")
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    yield client
    from cooperbench.team.remote import remote_root

    for server in containers(client, service="git"):  # this session's git server (its folder is temporary)
        if server.labels.get("cooperbench.git-root") == str(remote_root()):
            server.remove(force=True)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    client.close()


def containers(client, **labels) -> list:
    """The cooperbench containers (any state) whose labels match `labels` (cooperbench.<key>=value)."""
    filters = ["cooperbench"] + [f"cooperbench.{k}={v}" for k, v in labels.items()]
    return client.containers.list(all=True, filters={"label": filters})


class ContainerAsModalSandbox:
    """A stand-in for `modal.Sandbox` (the part the modal backend uses: exec, open, terminate) on a
    real container, so that `ModalSandbox`'s own logic runs for real without Modal's service."""

    class _Process:
        def __init__(self, output: bytes, code: int):
            self.stdout = type("Stream", (), {"read": lambda _self: output.decode("utf-8", "replace")})()
            self.returncode = code

        def wait(self) -> int:
            return self.returncode

    class _File:
        def __init__(self, container, path: str, mode: str):
            self.container, self.path, self.mode, self.data = container, path, mode, b""

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            if "w" in self.mode and exc[0] is None:
                from cooperbench.sandbox.images import tar_one

                assert self.container.put_archive("/", tar_one(self.path, self.data))

        def write(self, data: bytes):
            self.data += data

        def read(self) -> bytes:
            import docker

            from cooperbench.sandbox.images import untar_one

            try:
                stream, _ = self.container.get_archive(self.path)
            except docker.errors.NotFound:
                raise FileNotFoundError(self.path) from None
            return untar_one(b"".join(stream))

    def __init__(self, container):
        self.container = container

    def exec(self, *args: str, workdir: str | None = None, timeout: int | None = None):
        result = self.container.exec_run(list(args), workdir=workdir)
        return self._Process(result.output or b"", result.exit_code)

    def open(self, path: str, mode: str = "r"):
        return self._File(self.container, path, mode)

    def terminate(self) -> None:
        self.container.remove(force=True)
