"""Property tests of patch handling, on patches and merges made by real git in small generated repositories.

- the test-file filter (`drop_test_files`): no test section survives, every other section is
  kept byte for byte and in order, it is idempotent, and what applied still applies;
- `split_patch` / `files_in`: the sections put back together are the patch, and they name
  exactly the files git says changed (spaces, ` b/`, non-ASCII names, binaries, renames);
- the merge: two edits of a generated file that do not touch neighbouring lines merge
  cleanly (naive) with both edits present; two different edits of the same line conflict.
  Checked with `git merge-tree` (as `cooperbench dataset conflicts` does) and with
  `evaluation.merge_branches` in a real LocalSandbox.

Example counts are small: every example runs git several times.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cooperbench.grading.merge_and_test import apply_on_branch, merge_branches
from cooperbench.grading.patchcheck import check_patch
from cooperbench.grading.patchutil import drop_test_files, files_in, is_test_path, split_patch

FAST = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SLOW = settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

DIRS = ["", "src/", "tests/", "pkg/test/", "web/__tests__/", "x b/", "docs/", "tésts/"]
NAMES = [
    "app.py",
    "test_app.py",
    "util_test.go",
    "button.test.ts",
    "conftest.py",
    "lib.rs",
    "a b.txt",
    "é.py",
    "data.bin",
    "y.bin b",
    "README.md",
]
paths = st.builds(lambda d, n: d + n, st.sampled_from(DIRS), st.sampled_from(NAMES))
texts = st.lists(
    st.sampled_from(
        [
            "alpha",
            "beta",
            "gamma",
            "-- sql",
            "++ x",
            "diff --git a/q b/q",
            "",
            "cr\rdiff --git a/tests/t.py b/tests/t.py",
            "ff\x0c--- /etc/passwd",
        ]
    ),
    min_size=0,
    max_size=5,
).map(lambda lines: "".join(line + "\n" for line in lines))
contents = st.one_of(texts, st.binary(min_size=1, max_size=20).map(lambda b: b"\0" + b))


def git(repo, *args, input=None, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-c", "core.quotepath=true", *args], cwd=repo, input=input, capture_output=True, check=check
    )


def _write(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def _init(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@t")
    git(repo, "config", "user.name", "t")


@st.composite
def changes(draw):
    """A base tree and changes to it: edits, deletions, new files, renames."""
    base = draw(st.dictionaries(paths, contents, min_size=1, max_size=6))
    actions = {}
    for path in base:
        actions[path] = draw(st.sampled_from(["keep", "edit", "delete", "rename"]))
    edits = {p: draw(contents) for p, a in actions.items() if a == "edit"}
    renames = {p: draw(paths) for p, a in actions.items() if a == "rename"}
    added = draw(st.dictionaries(paths, contents, max_size=4))
    return base, edits, [p for p, a in actions.items() if a == "delete"], renames, added


def _free(repo: Path, path: str) -> bool:
    """No file or folder at `path`, and no file where one of its folders would be."""
    target = repo / path
    return not target.exists() and not any(p.is_file() for p in target.parents if p != repo)


def _make(repo: Path, change) -> tuple[str, list[str]]:
    """Commit the base, stage the changes; return (the staged patch, the changed names git reports)."""
    base, edits, deleted, renames, added = change
    _init(repo)
    for path, content in base.items():
        _write(repo / path, content)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    for path, content in edits.items():
        _write(repo / path, content)
    for path in deleted:
        (repo / path).unlink()
    for old, new in renames.items():
        if (repo / old).exists() and _free(repo, new):
            content = (repo / old).read_bytes()
            (repo / old).unlink()
            _write(repo / new, content)
    for path, content in added.items():
        if _free(repo, path):
            _write(repo / path, content)
    git(repo, "add", "-A")
    patch = git(repo, "diff", "--cached", "--binary", "-M").stdout.decode("utf-8", "surrogateescape")
    names = git(repo, "diff", "--cached", "--name-only", "-z", "-M").stdout.decode("utf-8", "surrogateescape")
    return patch, [n for n in names.split("\0") if n]


def _applies(repo: Path, patch: str) -> bool:
    return (
        git(repo, "apply", "--check", "-", input=patch.encode("utf-8", "surrogateescape"), check=False).returncode == 0
    )


@FAST
@given(changes())
def test_drop_test_files_properties(change):
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "r"
        patch, _ = _make(repo, change)
        kept = drop_test_files(patch)
        sections = split_patch(kept)
        assert not any(is_test_path(s.path) for s in sections)
        assert [s.text for s in sections] == [s.text for s in split_patch(patch) if not is_test_path(s.path)]
        assert drop_test_files(kept) == kept
        assert check_patch(patch) == [] and check_patch(kept) == []  # git's own output is never refused
        git(repo, "reset", "-q", "--hard")
        if _applies(repo, patch):
            assert kept == "" or _applies(repo, kept)


@FAST
@given(changes())
def test_split_and_files_in_round_trip(change):
    with tempfile.TemporaryDirectory() as tmp:
        patch, names = _make(Path(tmp) / "r", change)
        sections = split_patch(patch)
        assert "".join(s.text for s in sections) == patch
        assert files_in(patch) == [s.path for s in sections]
        assert sorted(files_in(patch)) == sorted(names)
        for s in sections:
            assert split_patch(s.text) == [s]


@given(st.text(alphabet="ab \n-+@", max_size=60))
@settings(max_examples=100, deadline=None, database=None)
def test_text_without_headers_has_no_sections(junk):
    assume("diff --git " not in junk)
    assert split_patch(junk) == [] and drop_test_files(junk) == ""


@st.composite
def two_edits(draw, overlapping: bool):
    """A file of distinct lines and two edits (line index -> new lines) by two agents."""
    n = draw(st.integers(min_value=4, max_value=14))
    lines = [f"line {i} {draw(st.sampled_from(['a', 'b', 'c']))}" for i in range(n)]
    i = draw(st.integers(min_value=0, max_value=n - 1))
    if overlapping:
        j = i
    else:  # at least one untouched line between the two edits
        j = draw(st.integers(min_value=0, max_value=n - 1).filter(lambda j: abs(j - i) >= 2))
    new_lines = st.lists(st.sampled_from(["x", "y", "z", ""]), min_size=1, max_size=3)
    e1 = [f"one {t}" for t in draw(new_lines)]
    e2 = [f"two {t}" for t in draw(new_lines)]
    return lines, (i, e1), (j, e2)


def _edited(lines, *edits) -> str:
    out = list(lines)
    for index, new in sorted(edits, reverse=True):
        out[index : index + 1] = new
    return "".join(line + "\n" for line in out)


def _edit_patches(repo: Path, lines, e1, e2) -> tuple[str, str]:
    patches = []
    for index, new in (e1, e2):
        (repo / "f.txt").write_text(_edited(lines, (index, new)))
        patches.append(git(repo, "diff").stdout.decode())
        git(repo, "checkout", "-q", "--", "f.txt")
    return patches[0], patches[1]


def _merge_tree(lines, e1, e2) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        _init(repo)
        (repo / "f.txt").write_text(_edited(lines))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "base")
        commits = []
        for index, new in (e1, e2):
            git(repo, "checkout", "-q", "-B", f"e{len(commits)}", "HEAD" if not commits else "HEAD~1")
            (repo / "f.txt").write_text(_edited(lines, (index, new)))
            git(repo, "commit", "-qam", "edit")
            commits.append(git(repo, "rev-parse", "HEAD").stdout.decode().strip())
        proc = git(repo, "merge-tree", "--write-tree", "--name-only", *commits, check=False)
        out = proc.stdout.decode()
        if proc.returncode == 0:
            return 0, git(repo, "show", f"{out.split()[0]}:f.txt").stdout.decode()
        return proc.returncode, out


@FAST
@given(two_edits(overlapping=False))
def test_merge_tree_of_separate_edits_is_clean_and_keeps_both(edits):
    lines, e1, e2 = edits
    code, merged = _merge_tree(lines, e1, e2)
    assert code == 0, merged
    assert merged == _edited(lines, e1, e2)


@FAST
@given(two_edits(overlapping=True))
def test_merge_tree_of_the_same_line_conflicts(edits):
    lines, e1, e2 = edits
    code, out = _merge_tree(lines, e1, e2)
    assert code == 1 and "f.txt" in out.split("\n\n")[0].splitlines()[1:]


def test_merge_branches_in_a_sandbox(eval_sandbox, upstream):
    """evaluation's own merge (apply_on_branch + merge_branches) in one real LocalSandbox, reused."""
    _, base, _ = upstream
    sandbox = eval_sandbox
    repo = Path(sandbox.repo_dir)

    def run(lines, e1, e2) -> tuple[str, str | None, bool, str]:
        git(repo, "checkout", "-q", "-f", "-B", "cb-base", base)
        (repo / "f.txt").write_text(_edited(lines))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "generated base")  # cb-base is now the generated file's base
        p1, p2 = _edit_patches(repo, lines, e1, e2)
        s1 = apply_on_branch(sandbox, "agent1", p1)
        assert s1 == "applied", getattr(s1, "reason", s1)
        assert apply_on_branch(sandbox, "agent2", p2) == "applied"
        status, strategy, merged = merge_branches(sandbox, ["agent1", "agent2"])
        return status, strategy, merged, (repo / "f.txt").read_text()

    @SLOW
    @given(two_edits(overlapping=False))
    def separate(edits):
        lines, e1, e2 = edits
        status, strategy, merged, text = run(lines, e1, e2)
        assert (status, strategy, merged) == ("clean", "naive", True)
        assert text == _edited(lines, e1, e2)

    @SLOW
    @given(two_edits(overlapping=True))
    def same_line(edits):
        lines, e1, e2 = edits
        status, strategy, merged, text = run(lines, e1, e2)
        assert (status, strategy) == ("conflicts", "union")
        if merged:  # the union merge keeps both sides' lines
            assert all(line + "\n" in text for line in e1[1] + e2[1])

    separate()
    same_line()
