"""The repository cache: clone once, honour git's url rewriting, hand out copies with nothing after the base."""

import os
import subprocess

import pytest

from cooperbench.data.repocache import RepoCache, git
from cooperbench.errors import UserError

from ..conftest import sh_git as _git


def test_working_copy_holds_the_base_and_nothing_after(upstream, tmp_path):
    bare, base, future = upstream
    cache = RepoCache(tmp_path / "cache")
    wc = cache.checkout(str(bare), base, tmp_path / "wc")
    assert _git(wc, "rev-parse", "HEAD") == base
    assert _git(wc, "rev-list", "--all", "--count") == "2"  # base and its parent
    assert _git(wc, "tag") == "" and _git(wc, "remote") == ""
    assert _git(wc, "branch", "--format=%(refname:short)") == "main"
    assert git("cat-file", "-e", future, cwd=wc, check=False).returncode != 0
    assert (
        "SECRET"
        not in subprocess.run(["git", "log", "--all", "-p", "--reflog"], cwd=wc, capture_output=True, text=True).stdout
    )
    objects = _git(wc, "cat-file", "--batch-all-objects", "--batch-check")
    assert future not in objects
    assert not (wc / ".git" / "FETCH_HEAD").exists() and not (wc / ".git" / "logs").exists()
    assert (wc / "lib.py").read_text().endswith("return 2\n")
    assert _git(wc, "status", "--porcelain") == ""


def test_upstream_is_cloned_once(upstream, tmp_path):
    bare, base, _ = upstream
    cache = RepoCache(tmp_path / "cache")
    cache.checkout(str(bare), base, tmp_path / "a")
    mirror = cache.mirror(str(bare), base)
    stamp = mirror.stat().st_mtime_ns
    os.rename(bare, tmp_path / "moved.git")  # the upstream is gone: the cache must suffice
    cache.checkout(str(bare), base, tmp_path / "b")
    assert mirror.stat().st_mtime_ns == stamp
    assert _git(tmp_path / "b", "rev-parse", "HEAD") == base


def test_user_git_config_insteadof_is_honoured(upstream, tmp_path, monkeypatch):
    bare, base, _ = upstream
    config = tmp_path / "gitconfig"
    config.write_text(f'[url "{bare}"]\n\tinsteadOf = https://git.example.invalid/team/lib.git\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    cache = RepoCache(tmp_path / "cache")
    wc = cache.checkout("https://git.example.invalid/team/lib.git", base, tmp_path / "wc")
    assert _git(wc, "rev-parse", "HEAD") == base


def test_unknown_commit_and_unreachable_url_are_user_errors(upstream, tmp_path):
    bare, _, _ = upstream
    cache = RepoCache(tmp_path / "cache")
    with pytest.raises(UserError, match="not found"):
        cache.base(str(bare), "0" * 40)
    with pytest.raises(UserError, match="cannot clone"):
        cache.base(str(tmp_path / "nowhere.git"), "0" * 40)


def test_copies_are_independent(upstream, tmp_path):
    bare, base, _ = upstream
    cache = RepoCache(tmp_path / "cache")
    a = cache.checkout(str(bare), base, tmp_path / "a")
    (a / "lib.py").write_text("broken\n")
    _git(a, "commit", "-qam", "agent commit")
    b = cache.checkout(str(bare), base, tmp_path / "b")
    assert _git(b, "rev-parse", "HEAD") == base and "return 2" in (b / "lib.py").read_text()


def test_the_snapshot_is_the_base_commit_alone_made_once(upstream, tmp_path):
    bare, base, future = upstream
    cache = RepoCache(tmp_path / "cache")
    snap = cache.snapshot(str(bare), base)
    assert _git(snap, "--git-dir", str(snap), "rev-list", "--all", "--count") == "1"  # not even its parent
    assert _git(snap, "--git-dir", str(snap), "rev-parse", "HEAD") == base
    assert _git(snap, "--git-dir", str(snap), "config", "core.bare") == "false"
    assert _git(snap, "--git-dir", str(snap), "remote") == ""  # no path into the farm's cache
    assert git("--git-dir", str(snap), "cat-file", "-e", future, cwd=snap, check=False).returncode != 0
    assert not (snap / "hooks").exists()
    stamp = (snap / "cooperbench-ready").stat().st_mtime_ns
    os.rename(bare, tmp_path / "moved.git")
    assert cache.snapshot(str(bare), base) == snap and (snap / "cooperbench-ready").stat().st_mtime_ns == stamp


def test_the_cache_fetches_only_the_base_and_its_history_to_the_depth_set(upstream, tmp_path, monkeypatch):
    """An upstream that serves commits by id (as GitHub and a lab's mirror do): the cache asks for the base
    alone, with its history (all of it, or `history_depth` commits), never the later commit, tag or branch."""
    bare, base, future = upstream
    url = f"file://{bare}"  # through upload-pack, as a remote server
    cache = RepoCache(tmp_path / "all")
    mirror = cache.mirror(url, base)
    assert git("cat-file", "-e", future, cwd=mirror, check=False).returncode != 0  # the later commit never came
    assert _git(mirror, "tag") == "" and "side" not in _git(mirror, "for-each-ref")
    assert _git(cache.base(url, base), "rev-list", "--count", "HEAD") == "2"  # the base and its whole history

    monkeypatch.setenv("COOPERBENCH_HISTORY_DEPTH", "1")
    shallow = RepoCache(tmp_path / "one")
    wc = shallow.checkout(url, base, tmp_path / "wc")
    assert _git(wc, "rev-list", "--count", "HEAD") == "1" and _git(wc, "rev-parse", "HEAD") == base
    assert (wc / ".git" / "shallow").read_text().strip() == base
    _git(wc, "checkout", "-q", "-b", "a")  # a shallow copy still merges, as evaluations do
    (wc / "a.txt").write_text("a\n")
    _git(wc, "add", "a.txt")
    _git(wc, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    _git(wc, "checkout", "-q", "main")
    _git(wc, "-c", "user.name=t", "-c", "user.email=t@t", "merge", "-q", "--no-edit", "a")


def test_an_upstream_that_serves_no_commit_by_id_is_cloned_whole(upstream, tmp_path):
    bare, base, future = upstream
    bundle = tmp_path / "upstream.bundle"
    _git(bare, "bundle", "create", str(bundle), "--all")
    wc = RepoCache(tmp_path / "cache").checkout(str(bundle), base, tmp_path / "wc")
    assert _git(wc, "rev-parse", "HEAD") == base and _git(wc, "rev-list", "--count", "HEAD") == "2"
    assert git("cat-file", "-e", future, cwd=wc, check=False).returncode != 0  # the base still holds nothing later
