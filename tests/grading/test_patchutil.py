"""Splitting patches and dropping test files, on patches produced by real git."""

import subprocess

import pytest

from cooperbench.grading.patchutil import drop_test_files, files_in, header_names, is_test_path, split_patch


@pytest.mark.parametrize(
    "path",
    [
        "tests/test_x.py",
        "pkg/tests/helpers.py",
        "test_mod.py",
        "pkg/mod_test.py",
        "conftest.py",
        "server/router_test.go",
        "src/__tests__/app.ts",
        "src/app.test.ts",
        "web/button.spec.ts",
        "ui/x.test.tsx",
        "crates/core/tests/integration.rs",
        "tests/data/fixture.json",
    ],
)
def test_test_paths(path):
    assert is_test_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "src/app.ts",
        "pkg/testing_utils_impl.py.bak",
        "router.go",
        "src/lib.rs",
        "contest.py",
        "latest/x.py",
        "src/attest.ts",
        "README.md",
    ],
)
def test_source_paths(path):
    assert not is_test_path(path)


def _git(repo, *args, input=None):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, input=input).stdout


@pytest.fixture
def real_patch(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@t")
    _git(repo, "config", "user.name", "t")
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("a = 1\n")
    (repo / "tests").mkdir()
    (repo / "tests" / "test_app.py").write_text("def test(): pass\n")
    (repo / "old name.txt").write_text("x\n" * 20)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    (repo / "src" / "app.py").write_text("a = 2\n")
    (repo / "tests" / "test_app.py").write_text("def test(): assert True\n")
    (repo / "tests" / "test_new.py").write_text("def test_new(): pass\n")
    (repo / "src" / "router_test.go").write_text("package x\n")
    (repo / "logo.bin").write_bytes(bytes(range(256)))
    _git(repo, "mv", "old name.txt", "new name.txt")
    _git(repo, "add", "-A")
    return repo, _git(repo, "diff", "--cached", "--binary")


def test_split_names_every_file(real_patch):
    _, patch = real_patch
    assert sorted(files_in(patch)) == sorted(
        ["src/app.py", "tests/test_app.py", "tests/test_new.py", "src/router_test.go", "logo.bin", "new name.txt"]
    )
    assert "".join(s.text for s in split_patch(patch)) == patch


def test_filtered_patch_applies_and_keeps_only_sources(real_patch):
    repo, patch = real_patch
    kept = drop_test_files(patch)
    assert sorted(files_in(kept)) == ["logo.bin", "new name.txt", "src/app.py"]
    _git(repo, "reset", "-q", "--hard")
    _git(repo, "apply", "--check", "-", input=kept)


def test_only_tests_gives_empty():
    patch = "diff --git a/tests/t.py b/tests/t.py\n--- a/tests/t.py\n+++ b/tests/t.py\n@@ -1 +1 @@\n-a\n+b\n"
    assert drop_test_files(patch) == ""
    assert drop_test_files("") == ""
    assert split_patch("garbage without headers\n") == []


@pytest.mark.parametrize(
    "rest, names",
    [
        ("a/x.py b/x.py", ["a/x.py", "b/x.py"]),
        ("a/x b/y.bin b/x b/y.bin", ["a/x b/y.bin", "b/x b/y.bin"]),  # a name holding " b/"
        ('"a/\\303\\251.py" "b/\\303\\251.py"', ["a/é.py", "b/é.py"]),
        ('a/old.py "b/t\\303\\251st.py"', ["a/old.py", "b/tést.py"]),
        ('"a/tab\\there" b/plain', ["a/tab\there", "b/plain"]),
        ("a/old.py b/new.py", ["a/old.py", "b/new.py"]),
    ],
)
def test_header_names(rest, names):
    assert header_names(rest + "\n") == names


def test_quoted_and_spaced_names_are_read_as_git_means_them(tmp_path):
    """Non-ASCII names (quoted by git), names with ` b/`, binaries and empty files have no ---/+++ names."""
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@t")
    _git(repo, "config", "user.name", "t")
    (repo / "é.py").write_text("x\n" * 10)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    (repo / "x b").mkdir()
    (repo / "x b" / "y.bin").write_bytes(b"\0\1")
    (repo / "tests empty").write_text("")
    _git(repo, "mv", "é.py", "ü.py")
    _git(repo, "add", "-A")
    patch = _git(repo, "-c", "core.quotepath=true", "diff", "--cached", "--binary", "-M")
    assert '"b/\\303\\274.py"' in patch or 'rename to "\\303\\274.py"' in patch
    assert sorted(files_in(patch)) == ["tests empty", "x b/y.bin", "ü.py"]
