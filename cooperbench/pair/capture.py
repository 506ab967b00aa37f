"""Captures an agent's change as a patch against the base commit, independent of what the agent did to git.

Before the agent starts, the harness keeps its own one-commit copy of the base in the
sandbox's harness folder (`files/base.git`). Afterwards a confined command diffs the
working tree against a copy of it with a private index, so new files are included and
commits, resets, branch switches or a deleted `.git` in the working copy change nothing.
"""

from __future__ import annotations

import shlex

from ..sandbox import Sandbox, SandboxError

EXCLUDES = ["__pycache__/", "*.pyc", ".pytest_cache/", "*.egg-info/", ".mypy_cache/", "node_modules/", "target/"]


class CaptureError(Exception):
    """The agent's working tree could not be captured (it made it unreadable to git): its own outcome."""


OUT = "cooperbench-capture"  # where the capture writes, in the sandbox's own temporary folder


def prepare(sandbox: Sandbox) -> None:
    """Snapshot the base commit into the harness folder (run before the agent starts)."""
    gd = shlex.quote(f"{sandbox.files_dir}/base.git")
    repo = shlex.quote(sandbox.repo_dir)
    excludes = "\\n".join(EXCLUDES)
    script = (
        f"git clone --quiet --bare --template= --no-hardlinks --depth 1 file://{repo} {gd} "
        f"&& git --git-dir={gd} config core.bare false "
        f"&& mkdir -p {gd}/info && printf '{excludes}\\n' > {gd}/info/exclude"
    )
    result = sandbox.exec(script, timeout=600, confined=False)
    if result.exit_code != 0:
        raise SandboxError(f"cannot snapshot base commit: {result.output.strip()[-300:]}")


def capture(sandbox: Sandbox) -> str:
    """The working tree's full change against the base commit, as a binary-safe git diff.

    It runs confined, as the agent's commands do: the working tree is the agent's, and
    whatever it planted there (attributes, a symlinked tree, a `.gitconfig` in its home) acts
    with the agent's own rights only. The harness's snapshot is copied, never written."""
    where = f"{sandbox.tmp_dir}/{OUT}"
    out = shlex.quote(where)
    gd = shlex.quote(f"{where}/base.git")
    index = shlex.quote(f"{where}/base.git/capture.index")
    g = f"GIT_INDEX_FILE={index} git --git-dir={gd} --work-tree={shlex.quote(sandbox.repo_dir)}"
    script = (
        f"rm -rf {out} && mkdir -p {out} && cp -r {shlex.quote(sandbox.files_dir)}/base.git {gd} && "
        f"mkdir -p {shlex.quote(sandbox.repo_dir)} && cd {shlex.quote(sandbox.repo_dir)} && "
        f"{g} read-tree HEAD && {g} add -A && "
        f"{g} diff --cached --binary --no-color --no-ext-diff HEAD > {out}/patch"
    )
    result = sandbox.exec(script, timeout=600, cwd=sandbox.files_dir)
    if result.exit_code != 0:
        raise CaptureError(f"cannot capture the agent's patch: {result.output.strip()[-300:]}")
    try:
        return sandbox.read_file(f"{where}/patch").decode("utf-8", "surrogateescape")
    except (SandboxError, OSError, ValueError) as exc:  # replaced by something else than the file git wrote
        raise CaptureError(f"cannot read the agent's captured patch: {exc}") from exc
