"""Podman for the deployment tests: the machine's local base image, made able to reach PyPI and
Debian through this machine's TLS proxy (its CA bundle copied in), and a skip when podman is absent."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

LOCAL_BASE = os.environ.get("COOPERBENCH_BASE_IMAGE", "cooperbench-base:bookworm")
CA_BUNDLE = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
CONTAINERS_CONF = "/etc/cooperbench/containers.conf"  # written by .ci/podman.sh (runc, no ulimits)

needs_podman = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    if Path(CONTAINERS_CONF).exists():
        env.setdefault("CONTAINERS_CONF", CONTAINERS_CONF)
    return env


def podman(*args: str, check: bool = True, timeout: float = 1800, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", *args], env=podman_env(), check=check, timeout=timeout, text=True, capture_output=True, **kw
    )


def base_image() -> str:
    """The local base image plus this machine's CA bundle (tagged by the bundle's hash, built once)."""
    if podman("image", "exists", LOCAL_BASE, check=False).returncode != 0:
        pytest.fail(f"no base image {LOCAL_BASE}: run `bash .ci/podman.sh`")
    bundle = CA_BUNDLE.read_bytes() if CA_BUNDLE.exists() else b""
    tag = f"cooperbench-base-ca:{hashlib.sha256(bundle + LOCAL_BASE.encode()).hexdigest()[:12]}"
    if podman("image", "exists", tag, check=False).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "ca.crt").write_bytes(bundle)
        Path(ctx, "Containerfile").write_text(
            f"FROM {LOCAL_BASE}\n"
            "COPY ca.crt /etc/ssl/certs/ca-certificates.crt\n"
            "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt "
            "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt UV_NATIVE_TLS=1\n"
        )
        podman("build", "-t", tag, ctx)
    return tag
