"""The pair's shared git remote (`--git`): a bare repository both teammates push to and fetch from.

One per pair, made once from the task's base commit, named by experiment and pair so
that pairs never see each other's branches. It lives under the `git_root` setting
(default: the cache's `remotes/`): a folder every worker of a farm can reach (a shared
file system) lets a pair's two agents run on different machines. A backend that cannot
mount a path (containers) is given the same repository through a git server instead;
the harness only hands the backend the location (`team_remote=`). Evaluation never reads
it: the captured patches are what count.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import settings
from ..data.repocache import _locked, git

REMOTE_NAME = "team"


def remote_root() -> Path:
    return Path(settings.get("git_root")).resolve()


def ensure(experiment: str, pair_key: str, base_repo: Path) -> Path:
    """The pair's bare repository (created once, from the base repository's `main`)."""
    path = remote_root() / experiment / f"{pair_key}.git"
    with _locked(path):
        if not (path / "cooperbench-ready").exists():
            shutil.rmtree(path, ignore_errors=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            git("clone", "--quiet", "--bare", "--no-hardlinks", str(base_repo), str(path))
            git("remote", "remove", "origin", cwd=path, check=False)
            (path / "cooperbench-ready").write_text("")
    return path


def forget(experiment: str, pair_key: str) -> None:
    """Drop the pair's remote (a forced rerun starts from the base again)."""
    path = remote_root() / experiment / f"{pair_key}.git"
    with _locked(path):
        shutil.rmtree(path, ignore_errors=True)
