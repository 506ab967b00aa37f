"""Captures an agent's change as a patch against the base commit, independent of what the agent did to git.

Before the agent starts, the harness keeps its own one-commit copy of the base in the
sandbox's harness folder (`files/base.git`). Afterwards it diffs the working tree against
that copy with a private index, so new files are included and commits, resets, branch
switches or a deleted `.git` in the working copy change nothing.
"""

from __future__ import annotations

import shlex

from ..sandbox import Sandbox, SandboxError

EXCLUDES = ["__pycache__/", "*.pyc", ".pytest_cache/", "*.egg-info/", ".mypy_cache/", "node_modules/", "target/"]


def _git(sandbox: Sandbox) -> str:
    gd = f"{sandbox.files_dir}/base.git"
    work_tree = shlex.quote(sandbox.repo_dir)
    return f"GIT_INDEX_FILE={shlex.quote(gd)}/capture.index git --git-dir={shlex.quote(gd)} --work-tree={work_tree}"


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
    """The working tree's full change against the base commit, as a binary-safe git diff."""
    g = _git(sandbox)
    out = f"{sandbox.files_dir}/captured.patch"
    repo = shlex.quote(sandbox.repo_dir)
    script = (
        f"mkdir -p {repo} && cd {repo} && {g} read-tree HEAD && {g} add -A && "
        f"{g} diff --cached --binary --no-color --no-ext-diff HEAD > {shlex.quote(out)}"
    )
    result = sandbox.exec(script, timeout=600, confined=False, cwd=sandbox.files_dir)
    if result.exit_code != 0:
        raise SandboxError(f"cannot capture the agent's patch: {result.output.strip()[-300:]}")
    return sandbox.read_file(out).decode("utf-8", "surrogateescape")
