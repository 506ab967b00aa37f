"""Fetches each upstream repository once and hands out clean working copies at a base commit.

Three layers under the cache folder, each made once under a file lock so that many
workers can share it:
- `mirrors/<name>.git`: a mirror clone of the upstream, made with the user's own git
  configuration (so `url.<mirror>.insteadOf` and credentials helpers apply);
- `bases/<name>-<sha>/`: a repository holding the base commit and its ancestors only,
  on a branch `main`: no remotes, tags, reflog or later commits an agent could read;
- `snapshots/<name>-<sha>.git`: the base commit alone, as a bare repository, for diffing a
  working tree against the base (each agent sandbox's harness gets a copy);
- working copies: plain copies of a base, one per sandbox.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from .. import settings
from ..errors import UserError
from ..settings import cache_dir

BRANCH = "main"
IDENTITY = {
    "GIT_AUTHOR_NAME": "cooperbench",
    "GIT_AUTHOR_EMAIL": "cooperbench@localhost",
    "GIT_COMMITTER_NAME": "cooperbench",
    "GIT_COMMITTER_EMAIL": "cooperbench@localhost",
}


# git on the farm's own repositories (bases, snapshots): no user or system configuration, no hooks
_OWN_GIT = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}


class GitError(RuntimeError):
    """A git command failed."""


def git(
    *args: str,
    cwd: str | os.PathLike | None = None,
    env: dict | None = None,
    input: bytes | str | None = None,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run git, returning the completed process (stdout/stderr as text)."""
    full_env = {**os.environ, **IDENTITY, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        timeout=timeout,
        input=input.encode("utf-8", "surrogateescape") if isinstance(input, str) else input,
    )
    proc.stdout = proc.stdout.decode("utf-8", "surrogateescape")
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args[:3])} failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    return proc


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _slug(url: str) -> str:
    name = re.sub(r"(\.git|\.bundle)$", "", url.rstrip("/").rsplit("/", 1)[-1]) or "repo"
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-{hashlib.sha256(url.encode()).hexdigest()[:10]}"


def _has_commit(repo: Path, sha: str) -> bool:
    return git("cat-file", "-e", f"{sha}^{{commit}}", cwd=repo, check=False).returncode == 0


def _fetch_commit(url: str, sha: str, repo: Path) -> bool:
    """Fetch `sha` by its id into the bare repository `repo` (made if missing), with `history_depth`
    commits of history behind it (0: all of it) and nothing after it. False when the upstream serves
    no commit by id (a git bundle, a server that allows no such request) or does not have it."""
    if len(sha) != 40:  # a short id or a name: only a whole clone can resolve it
        return False
    if not repo.exists():
        git("init", "--quiet", "--bare", "--template=", str(repo))
        git("remote", "add", "origin", url, cwd=repo)
    depth = settings.get("history_depth")
    history = [f"--depth={depth}"] if depth > 0 else []
    proc = git("fetch", "--quiet", "--no-tags", "--update-shallow", *history, "origin",
               f"+{sha}:refs/cooperbench/{sha}", cwd=repo, check=False, timeout=3600)  # fmt: skip
    return proc.returncode == 0 and _has_commit(repo, sha)


class RepoCache:
    def __init__(self, root: Path | None = None):
        self.root = Path(root or cache_dir())

    def mirror(self, url: str, sha: str) -> Path:
        """A local mirror of `url` that contains `sha` (cloned once, fetched when needed)."""
        path = self.root / "mirrors" / f"{_slug(url)}.git"
        with _locked(path):
            if not path.exists():
                tmp = path.with_name(path.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                try:
                    if not _fetch_commit(url, sha, tmp):  # a server that serves no commit by id: all of it
                        shutil.rmtree(tmp, ignore_errors=True)
                        git("clone", "--mirror", "--quiet", url, str(tmp), timeout=3600)
                except GitError as exc:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise UserError(f"cannot clone {url}: {exc}") from None
                tmp.rename(path)
            if not _has_commit(path, sha) and not _fetch_commit(url, sha, path):
                git("fetch", "--quiet", "--tags", "origin", "+refs/heads/*:refs/heads/*", cwd=path, check=False,
                    timeout=3600)  # fmt: skip
                if not _has_commit(path, sha):
                    raise UserError(f"base commit {sha} not found in {url}")
        return path

    def base(self, url: str, sha: str) -> Path:
        """A repository holding exactly `sha` and its ancestors, checked out on `main`."""
        path = self.root / "bases" / f"{_slug(url)}-{sha[:12]}"
        if (path / ".git" / "cooperbench-ready").exists():
            return path
        mirror = self.mirror(url, sha)
        with _locked(path):
            if (path / ".git" / "cooperbench-ready").exists():
                return path
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            # no template: every sandbox copies this folder, and git's sample hooks are a dozen files each time
            git("init", "--quiet", "--template=", f"--initial-branch={BRANCH}", cwd=path)
            full = git("rev-parse", f"{sha}^{{commit}}", cwd=mirror).stdout.strip()
            git("fetch", "--quiet", "--no-tags", "--update-shallow", str(mirror), full, cwd=path, timeout=3600)
            git("checkout", "--quiet", "-B", BRANCH, full, cwd=path)
            for leftover in ("FETCH_HEAD", "ORIG_HEAD"):
                (path / ".git" / leftover).unlink(missing_ok=True)
            shutil.rmtree(path / ".git" / "logs", ignore_errors=True)
            git("config", "core.logAllRefUpdates", "false", cwd=path)
            # every harness commit in a copy would otherwise start `git maintenance run --auto`
            git("config", "maintenance.auto", "false", cwd=path)
            git("config", "gc.auto", "0", cwd=path)
            git("config", "user.name", "agent", cwd=path)
            git("config", "user.email", "agent@cooperbench.local", cwd=path)
            git("gc", "--quiet", "--prune=now", cwd=path)
            (path / ".git" / "cooperbench-ready").write_text(full + "\n")
        return path

    def base_sha(self, url: str, sha: str) -> str:
        return (self.base(url, sha) / ".git" / "cooperbench-ready").read_text().strip()

    def snapshot(self, url: str, sha: str) -> Path:
        """The base commit alone (depth 1) as a bare repository with `core.bare` off, so that a
        command can name any folder its work tree; made once, copied into each agent sandbox."""
        path = self.root / "snapshots" / f"{_slug(url)}-{sha[:12]}.git"
        if (path / "cooperbench-ready").exists():
            return path
        base = self.base(url, sha)
        with _locked(path):
            if (path / "cooperbench-ready").exists():
                return path
            shutil.rmtree(path, ignore_errors=True)
            clone = ("clone", "--quiet", "--bare", "--template=", "--no-hardlinks", "--depth", "1")
            git(*clone, f"file://{base}", str(path), env=_OWN_GIT)
            git("--git-dir", str(path), "config", "core.bare", "false", env=_OWN_GIT)
            git("--git-dir", str(path), "config", "--remove-section", "remote.origin", env=_OWN_GIT)
            (path / "cooperbench-ready").write_text(self.base_sha(url, sha) + "\n")
        return path

    def checkout(self, url: str, sha: str, dest: Path) -> Path:
        """Copy a clean working copy of `url` at `sha` to `dest` (which must not exist)."""
        base = self.base(url, sha)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(dest)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"cannot copy working copy: {proc.stderr.strip()}")
        (dest / ".git" / "cooperbench-ready").unlink(missing_ok=True)
        return dest
