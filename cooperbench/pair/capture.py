"""Captures an agent's change as a patch against the base commit, independent of what the agent did to git.

Before the agent starts, the harness puts its own one-commit repository of the base in the
sandbox's harness folder (`files/base.git`: on the local backend, the repository cache's
snapshot shown there read-only, nothing copied; elsewhere a depth-1 clone of the fresh working
copy). Afterwards a confined command diffs the working tree against it, with an index and an
object folder of its own, so new files are included and commits, resets, branch switches or a
deleted `.git` in the working copy change nothing.
"""

from __future__ import annotations

import shlex
import uuid

from ..sandbox import Sandbox, SandboxError

EXCLUDES = ["__pycache__/", "*.pyc", ".pytest_cache/", "*.egg-info/", ".mypy_cache/", "node_modules/", "target/"]


class CaptureError(Exception):
    """The agent's working tree could not be captured (it made it unreadable to git): its own outcome."""


EXCLUDE_FILE = "capture.exclude"  # in the harness folder: the snapshot itself may be read-only
OUT = "cooperbench-capture"  # where the capture writes (a new folder each time), in the sandbox's own /tmp


def prepare(sandbox: Sandbox) -> None:
    """Snapshot the base commit into the harness folder (run before the agent starts): the repository
    cache's snapshot where the backend has one on this machine (`base_snapshot_at`), else a clone."""
    gd = f"{sandbox.files_dir}/base.git"
    place = getattr(sandbox, "base_snapshot_at", None)
    if place is None or not place(gd):
        repo = shlex.quote(sandbox.repo_dir)
        script = (
            f"git clone --quiet --bare --template= --no-hardlinks --depth 1 file://{repo} {shlex.quote(gd)} "
            f"&& git --git-dir={shlex.quote(gd)} config core.bare false"
        )
        result = sandbox.exec(script, timeout=600, confined=False)
        if result.exit_code != 0:
            raise SandboxError(f"cannot snapshot base commit: {result.output.strip()[-300:]}")
    sandbox.write_file(f"{sandbox.files_dir}/{EXCLUDE_FILE}", ("\n".join(EXCLUDES) + "\n").encode())


def capture(sandbox: Sandbox) -> str:
    """The working tree's full change against the base commit, as a binary-safe git diff.

    It runs confined, as the agent's commands do: the working tree is the agent's, and
    whatever it planted there (attributes, a symlinked tree, a `.gitconfig` in its home) acts
    with the agent's own rights only. The harness's snapshot is read, never written: the blobs
    of the working tree go to an object folder of the command's own."""
    where = f"{sandbox.tmp_dir}/{OUT}-{uuid.uuid4().hex[:12]}"  # new: nothing to remove first
    out = shlex.quote(where)
    gd = shlex.quote(f"{sandbox.files_dir}/base.git")
    exclude = shlex.quote(f"{sandbox.files_dir}/{EXCLUDE_FILE}")
    # git reads the snapshot (read-only here) and writes only below `out`: its own objects, its index
    script = (
        f"mkdir -p {out}/objects {shlex.quote(sandbox.repo_dir)} && "
        f"cd {shlex.quote(sandbox.repo_dir)} && export GIT_DIR={gd} GIT_WORK_TREE=. "
        f"GIT_OBJECT_DIRECTORY={out}/objects GIT_ALTERNATE_OBJECT_DIRECTORIES={gd}/objects "
        f"GIT_INDEX_FILE={out}/index && git read-tree HEAD && git -c core.excludesFile={exclude} add -A && "
        f"git diff --cached --binary --no-color --no-ext-diff HEAD > {out}/patch"
    )
    result = sandbox.exec(script, timeout=600, cwd=sandbox.files_dir)
    if result.exit_code != 0:
        raise CaptureError(f"cannot capture the agent's patch: {result.output.strip()[-300:]}")
    try:
        return sandbox.read_file(f"{where}/patch").decode("utf-8", "surrogateescape")
    except (SandboxError, OSError, ValueError) as exc:  # replaced by something else than the file git wrote
        raise CaptureError(f"cannot read the agent's captured patch: {exc}") from exc
