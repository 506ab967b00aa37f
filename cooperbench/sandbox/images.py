"""What the container backends (docker, modal) share: a task's image names, build inputs, the
repository-sanitizing script and the test command.

- A task's published image is `<prefix><repo without "_task", "_" -> "-">:task<id>`
  (the `image_prefix` setting, default `akhatua/cooperbench-`; empty = never pull).
- Otherwise the image is built from the task folder's Dockerfile, tagged by a hash of its
  build inputs: every file of the task folder except the feature folders (gold patches
  never enter an image), plus the `BASE_IMAGE` build argument. The files are read through
  `dataset.read_task_file`, so one that leads outside the task folder or is too big is refused.
- Published images clone the whole upstream history, so before a sandbox uses an image the
  `sanitize_script` leaves the repository at /workspace/repo holding the base commit and
  nothing after it (no other refs, tags, remotes, reflog), on branch `main`, with a git
  identity for commits.
- Tests run through the image's own `/usr/local/bin/runner.sh <tests.patch> [feature.patch]`
  with the patches under the harness folder `/patches`, as the published dataset defines.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import shlex
import tarfile
import time
from pathlib import Path

from .. import settings
from ..data.dataset import read_task_file
from . import SandboxError, dockerfile
from .dockerfile import BuildSupply

REPO_DIR = "/workspace/repo"
FILES_DIR = "/patches"
RUNNER = "/usr/local/bin/runner.sh"
BRANCH = "main"
SANITIZE_VERSION = "2"  # bump when the script changes: sanitized image tags change with it
_FEATURE_DIR = re.compile(r"^feature\d+$")


def image_prefix() -> str:
    return settings.get("image_prefix")


def base_image() -> str | None:
    return settings.get("base_image")


def lifetime() -> int:
    """Hard limit in seconds on a sandbox's life (the `sandbox_lifetime` setting, default 4 h)."""
    return settings.get("sandbox_lifetime")


def _short(task) -> str:
    return task.repo.removesuffix("_task").replace("_", "-").lower()


def prebuilt_image(task, prefix: str | None = None) -> str | None:
    """The published image's name, or None when pulling is switched off (empty prefix)."""
    prefix = image_prefix() if prefix is None else prefix
    return f"{prefix}{_short(task)}:task{task.task_id}" if prefix else None


def _context_files(task_dir: Path) -> list[Path]:
    files = []
    for path in sorted(task_dir.rglob("*")):
        rel = path.relative_to(task_dir)
        if _FEATURE_DIR.match(rel.parts[0]) or not path.is_file():
            continue
        files.append(path)
    return files


def build_hash(task_dir: Path, base: str | None = None, supply: BuildSupply | None = None) -> str:
    """A hash of the build inputs: the task folder minus feature folders, the base image and what
    the build is supplied with (registry mirror, CA bundle, upstream from the cache)."""
    task_dir = Path(task_dir)
    h = hashlib.sha256(f"BASE_IMAGE={base or ''}\n{supply.describe() if supply else ''}\n".encode())
    for path in _context_files(task_dir):
        name = str(path.relative_to(task_dir))
        h.update(name.encode() + b"\0")
        h.update(hashlib.sha256(read_task_file(task_dir, name)).digest())
    return h.hexdigest()[:16]


def build_tag(task, base: str | None = None, supply: BuildSupply | None = None) -> str:
    name = re.sub(r"[^a-z0-9_.-]", "-", f"cooperbench-task-{task.repo.lower()}-task{task.task_id}")
    return f"{name}:{build_hash(task.path, base, supply)}"


def build_context(task_dir: Path, supply: BuildSupply | None = None, upstream_git: Path | None = None) -> bytes:
    """The build context as a tar stream: the task folder without its feature folders, its
    Dockerfile rewritten for `supply` (see `dockerfile.py`), and what that supplies: the CA
    bundle, and `upstream_git` (a bare repository) when the Dockerfile clones the upstream."""
    task_dir = Path(task_dir)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in _context_files(task_dir):
            rel = str(path.relative_to(task_dir))
            if supply is None or rel != "Dockerfile":
                tar.add(str(path), arcname=rel, recursive=False)
                continue
            text, served = dockerfile.rewrite(read_task_file(task_dir, rel).decode("utf-8", "replace"), supply)
            _add_bytes(tar, rel, text.encode())
            if supply.ca_bundle:
                _add_bytes(tar, f"{dockerfile.CONTEXT_DIR}/ca.pem", supply.ca_bundle)
            if served and upstream_git is not None:
                up = f"{dockerfile.CONTEXT_DIR}/upstream"
                tar.add(str(upstream_git), arcname=f"{up}/{supply.upstream_slug}.git")
                _add_bytes(tar, f"{up}/gitconfig", dockerfile.gitconfig(supply, served).encode())
    return buf.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def sanitized_tag(task, source_id: str) -> str:
    """The tag of the sanitized image made from image `source_id` for `task`."""
    digest = hashlib.sha256(f"{source_id}|{task.base_commit}|{SANITIZE_VERSION}".encode()).hexdigest()[:16]
    name = re.sub(r"[^a-z0-9_.-]", "-", f"cooperbench-sandbox-{task.repo.lower()}-task{task.task_id}")
    return f"{name}:{digest}"


def sanitize_script(base_commit: str, repo_dir: str = REPO_DIR) -> str:
    """Bash: leave only `base_commit` and its ancestors in the repository, on branch main."""
    sha, repo = shlex.quote(base_commit), shlex.quote(repo_dir)
    return f"""set -euo pipefail
git config --system --add safe.directory '*' 2>/dev/null || git config --global --add safe.directory '*'
cd {repo}
base=$(git rev-parse --verify -q {sha}^{{commit}})
git checkout -q --detach "$base"
git for-each-ref --format='%(refname)' | while read -r ref; do git update-ref -d "$ref"; done
for r in $(git remote); do git remote remove "$r"; done
git checkout -q -B {BRANCH} "$base"
rm -rf .git/logs .git/FETCH_HEAD .git/ORIG_HEAD .git/MERGE_HEAD .git/refs/original .git/shallow.lock
git config core.logAllRefUpdates false
git config user.name agent
git config user.email agent@cooperbench.local
git reflog expire --expire=now --all
git gc -q --prune=now
test "$(git rev-list --all | wc -l)" = "$(git rev-list "$base" | wc -l)"
test -z "$(git tag)" && test -z "$(git remote)"
rm -rf {dockerfile.BUILD_DIR}
mkdir -p {shlex.quote(FILES_DIR)}
echo "$base" > .git/cooperbench-ready
"""


def exec_argv(command: str, timeout: float, prefix: list[str] = ()) -> list[str]:
    """The argv a sandbox command runs as: bash under coreutils' timeout (SIGKILL to its process
    group at the limit; exit 137), stderr into stdout so that the output keeps its order;
    `prefix` (a `prlimit ... --`) goes between the two."""
    limit = max(1, math.ceil(timeout))
    return ["timeout", "-s", "KILL", str(limit), *prefix, "bash", "-c", f"exec 2>&1\n{command}"]


def team_remote_command(url: str, repo_dir: str = REPO_DIR) -> str:
    return f"cd {shlex.quote(repo_dir)} && git remote add team {shlex.quote(url)}"


def runner_command(patch_paths: list[str]) -> str:
    """The image's own test runner with the patches (under /patches) by their file names."""
    return " ".join(shlex.quote(a) for a in [RUNNER, *(os.path.basename(p) for p in patch_paths)])


def host_runner_command(files_dir: str, repo_dir: str, patch_paths: list[str]) -> str:
    """The host-style runner (`run_tests.sh <repo> <patches...>`) copied to the harness folder."""
    return " ".join(shlex.quote(a) for a in ["bash", f"{files_dir}/run_tests.sh", repo_dir, *patch_paths])


def host_runner(sandbox, task, patch_paths: list[str], missing: str) -> str:
    """Copy the task's `run_tests.sh` into the sandbox's harness folder and return the command that runs
    it on the patches; a task without one is a SandboxError saying `missing`."""
    if task.test_script is None:
        raise SandboxError(missing)
    sandbox.write_file(f"{sandbox.files_dir}/run_tests.sh", task.test_script)
    return host_runner_command(sandbox.files_dir, sandbox.repo_dir, patch_paths)


def tar_one(name: str, data: bytes) -> bytes:
    """A tar stream holding one file (for put_archive-style uploads)."""
    return tar_files({name: data})


def tar_files(files: dict[str, bytes]) -> bytes:
    """A tar stream of these files (absolute path -> bytes), for put_archive-style uploads at /."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def untar_one(stream: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r") as tar:
        for member in tar:
            if member.isfile():
                return tar.extractfile(member).read()
    raise FileNotFoundError("no file in the archive")
