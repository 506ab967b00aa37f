"""The pair's shared git remote (`--git`): a bare repository both teammates push to and fetch from.

One per pair, made once from the task's base commit, named by experiment and pair so
that pairs never see each other's branches, plus a token only the farm can compute (an
HMAC of the name with a key kept in the remotes' folder, never shown to an agent): a
git server that serves the whole folder (the docker backend's) hands a pair's remote only
to whoever was given its path, and no agent can guess another pair's. It lives under the `git_root` setting
(default: the cache's `remotes/`): a folder every worker of a farm can reach (a shared
file system) lets a pair's two agents run on different machines. A backend that cannot
mount a path (containers) is given the same repository through a git server instead;
the harness only hands the backend the location (`team_remote=`). Evaluation never reads
it: the captured patches are what count.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import time
from pathlib import Path

from .. import settings
from ..data.repocache import _locked, git

REMOTE_NAME = "team"


def remote_root() -> Path:
    return Path(settings.get("git_root")).resolve()


def _key(root: Path) -> bytes:
    """The farm's key for remote names (made once, readable by the workers only)."""
    path = root / ".remote-key"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another worker made it meanwhile
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    for _ in range(50):  # the maker may not have written it yet
        if key := path.read_text().strip():
            return key.encode()
        time.sleep(0.1)
    raise RuntimeError(f"the remote key {path} is empty")


def path_of(experiment: str, pair_key: str) -> Path:
    """Where the pair's bare repository lives: its name and a token no agent can compute."""
    root = remote_root()
    token = hmac.new(_key(root), f"{experiment}|{pair_key}".encode(), hashlib.sha256).hexdigest()[:32]
    return root / experiment / f"{pair_key}-{token}.git"


def ensure(experiment: str, pair_key: str, base_repo: Path) -> Path:
    """The pair's bare repository (created once, from the base repository's `main`)."""
    path = path_of(experiment, pair_key)
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
    path = path_of(experiment, pair_key)
    with _locked(path):
        shutil.rmtree(path, ignore_errors=True)
