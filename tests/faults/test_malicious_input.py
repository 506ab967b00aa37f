"""Malicious or broken patches (dataset gold/tests patches, agent patches) are refused, never applied.

Every attack targets files named `pwned*` in a `victim` folder next to the repository (or
inside the repository's `.git`); after each attempt no such file exists anywhere. Where
git alone would already refuse, the test records that too, so it is clear which refusals
are git's and which are ours (cooperbench.patchcheck).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from cooperbench import patchcheck
from cooperbench.checks import conflicts
from cooperbench.dataset import Dataset, Pair
from cooperbench.evaluation import apply_on_branch, evaluate
from cooperbench.patchcheck import PatchRejected, check_patch, ensure_safe, patch_error
from cooperbench.repocache import RepoCache
from cooperbench.sandbox.local import LocalBackend
from ..conftest import run_cli


def _new_file(path: str, body: str = "PWNED", mode: str = "100644") -> str:
    return (f"diff --git a/{path} b/{path}\nnew file mode {mode}\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+{body}\n"
            "\\ No newline at end of file\n")


def attacks(victim: Path) -> dict[str, tuple[str, str, bool]]:
    """name -> (patch, the words of our refusal, whether git alone refuses it too)."""
    v = str(victim)
    return {
        "dotdot in every header": (_new_file("../victim/pwned"), "escapes the repository", True),
        "dotdot only in +++": (
            "diff --git a/ok b/ok\nnew file mode 100644\n--- /dev/null\n+++ b/../victim/pwned\n@@ -0,0 +1 @@\n+x\n",
            "escapes the repository", True),
        "dotdot in the middle": (_new_file("src/../../victim/pwned"), "escapes the repository", True),
        "absolute path": (_new_file(f"{v}/pwned"), "absolute path", True),
        "plain diff with absolute names": (f"--- {v}/pwned\n+++ {v}/pwned\n@@ -0,0 +1 @@\n+x\n",
                                           "absolute path", False),  # git writes <repo>/<v minus 1st dir>/pwned
        "quoted octal dotdot": ('diff --git "a/\\056\\056/victim/pwned" "b/\\056\\056/victim/pwned"\n'
                                'new file mode 100644\n--- /dev/null\n+++ "b/\\056\\056/victim/pwned"\n'
                                '@@ -0,0 +1 @@\n+x\n', "escapes the repository", True),
        "hook in .git": (_new_file(".git/hooks/pwned", mode="100755"), "inside .git", True),
        "hook in .GIT": (_new_file(".GIT/hooks/pwned"), "inside .git", True),
        "nested .git": (_new_file("sub/.git/pwned"), "inside .git", True),
        "rename out": ("diff --git a/lib.py b/../victim/pwned\nsimilarity index 100%\nrename from lib.py\n"
                       "rename to ../victim/pwned\n", "escapes the repository", True),
        "rename in from outside": (f"diff --git a/lib.py b/pwned\nsimilarity index 100%\nrename from {v}/x\n"
                                   "rename to pwned\n", "absolute path", True),
        "copy out": ("diff --git a/lib.py b/../victim/pwned\nsimilarity index 100%\ncopy from lib.py\n"
                     "copy to ../victim/pwned\n", "escapes the repository", True),
        "symlink to an absolute path": (_new_file("pwned_link", v, mode="120000"), "points outside", False),
        "symlink climbing out": (_new_file("a/b/pwned_link", "../../../victim", mode="120000"),
                                 "points outside", False),
        "symlink into .git": (_new_file("pwned_link", ".git/hooks", mode="120000"), "points into .git", False),
        "symlink then a file through it": (
            _new_file("pwned_link", v, mode="120000") + _new_file("pwned_link/pwned"), "points outside", True),
        "file replaced by a symlink": (
            "diff --git a/lib.py b/lib.py\ndeleted file mode 100644\n--- a/lib.py\n+++ /dev/null\n"
            "@@ -1,2 +0,0 @@\n-def f():\n-    return 2\n" + _new_file("lib.py", v, mode="120000"),
            "points outside", False),
        "mode change to a symlink": ("diff --git a/lib.py b/lib.py\nold mode 100644\nnew mode 120000\n",
                                     "into a symlink", True),
    }


def test_every_attack_is_named_by_the_checker(tmp_path):
    for name, (patch, words, _) in attacks(tmp_path / "victim").items():
        problems = check_patch(patch)
        assert problems and any(words in p for p in problems), (name, problems)
        assert all("\n" not in p for p in problems)
        error = patch_error(patch, "feature.patch")
        assert error.startswith("feature.patch rejected: ") and "\n" not in error
        with pytest.raises(PatchRejected, match="rejected"):
            ensure_safe(patch)


def test_safe_patches_pass(tmp_path, dataset_dir):
    inside_link = _new_file("docs/latest", "v2/index.md", mode="120000")
    sql = "diff --git a/q.sql b/q.sql\n--- a/q.sql\n+++ b/q.sql\n@@ -1,2 +1,2 @@\n--- /etc/passwd\n+++ ../x\n k\n"
    assert check_patch(inside_link) == [] and check_patch(sql) == []  # `-- x` lines inside a hunk are content
    for name in (".github/workflows/ci.yml", ".gitignore", "src/..hidden", "x.git/y", "docs/a b/c.md"):
        assert check_patch(_new_file(name)) == [], name
    for path in dataset_dir.rglob("*.patch"):
        assert check_patch(path.read_text()) == [], path


def test_size_limits(monkeypatch):
    big = "diff --git a/big b/big\nnew file mode 100644\n--- /dev/null\n+++ b/big\n@@ -0,0 +1,3 @@\n" + "+x\n" * 3
    assert check_patch(big) == []
    monkeypatch.setattr(patchcheck, "MAX_FILE_BYTES", 60)
    assert "over the limit of 60" in check_patch(big)[0]
    monkeypatch.setattr(patchcheck, "MAX_PATCH_BYTES", 50)
    assert check_patch(big)[0].startswith("patch is ")
    monkeypatch.undo()
    binary = ("diff --git a/b.bin b/b.bin\nnew file mode 100644\nindex 0000000..1111111\nGIT binary patch\n"
              f"literal {patchcheck.MAX_FILE_BYTES + 1}\nzcmV\n\nliteral 0\nHcmV?d00001\n\n")
    assert "binary file 'b.bin'" in check_patch(binary)[0]
    huge = "diff --git a/h b/h\n--- a/h\n+++ b/h\n@@ -1 +1 @@\n-a\n+" + "x" * patchcheck.MAX_PATCH_BYTES + "\n"
    assert check_patch(huge) == [f"patch is {len(huge)} bytes, over the limit of {patchcheck.MAX_PATCH_BYTES}"]


def _git(repo, *args, check=False):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=check)


def _no_pwned(root: Path):
    found = [p for p in root.rglob("*pwned*")]
    assert not found, found


def test_what_git_alone_does(tmp_path, upstream):
    """The baseline: which attacks git's own `git apply` refuses (our checker refuses all of them)."""
    bare, _, _ = upstream
    repo, victim = tmp_path / "repo", tmp_path / "victim"
    victim.mkdir()
    _git(tmp_path, "clone", "-q", str(bare), str(repo), check=True)
    _git(repo, "checkout", "-q", "HEAD~1")
    for name, (patch, _, git_refuses) in attacks(victim).items():
        proc = subprocess.run(["git", "apply", "--index", "-"], cwd=repo, input=patch, capture_output=True,
                              text=True)
        assert (proc.returncode != 0) == git_refuses, (name, proc.stderr)
        assert not list(victim.iterdir()), name  # git never writes outside, even when it accepts
        _git(repo, "reset", "-q", "--hard")
        _git(repo, "clean", "-qfdx")


@dataclass
class TaskRef:
    repo_url: str
    base_commit: str
    key: str = "lib_task/task1"


@pytest.fixture
def sandbox(tmp_path, upstream):
    bare, base, _ = upstream
    backend = LocalBackend(cache=RepoCache(tmp_path / "cache"), scratch=tmp_path / "sandboxes")
    sb = backend.create(TaskRef(str(bare), base), labels={"pair": "lib_task/task1/f1-f2", "agent": "eval"})
    assert sb.exec("git checkout -q -B cb-base", timeout=30, confined=False).exit_code == 0
    yield sb
    sb.close()


def test_apply_on_branch_refuses_every_attack(tmp_path, sandbox):
    victim = Path(sandbox.repo_dir).parent / "victim"  # `../victim` from the repository
    victim.mkdir()
    for name, (patch, words, _) in attacks(victim).items():
        status = apply_on_branch(sandbox, "agent1", patch)
        assert status == "failed" and isinstance(status, str), name
        assert status.reason.startswith("patch from agent1 rejected: ") and words in status.reason, status.reason
        assert json.loads(json.dumps({"agent1": status})) == {"agent1": "failed"}  # stored as a plain string
        _no_pwned(tmp_path)
        assert not list(Path(sandbox.files_dir).glob("agent1.patch")), "a rejected patch is never written"
        out = sandbox.exec("git status --porcelain && git rev-parse --abbrev-ref HEAD", timeout=30, confined=False)
        assert out.output.strip() == "cb-base", name
    good = ("diff --git a/lib.py b/lib.py\n--- a/lib.py\n+++ b/lib.py\n"
            "@@ -1,2 +1,2 @@\n def f():\n-    return 2\n+    return 3\n")
    assert apply_on_branch(sandbox, "agent2", good) == "applied"
    broken = good.replace("return 2", "return 7")
    status = apply_on_branch(sandbox, "agent3", broken)
    assert status == "failed" and "does not apply" in status.reason  # git's own refusal, with its reason


def _plant(dataset: Path, feature: int, name: str, text: str) -> Dataset:
    ds = Dataset(dataset)
    (ds.tasks[0].feature(feature).path / name).write_text(text)
    return ds


def _evaluate(tmp_path, dataset_copy, agent1_patch=None, tests_patch=None):
    ds = Dataset(dataset_copy)
    task = ds.tasks[0]
    if tests_patch is not None:
        _plant(dataset_copy, 2, "tests.patch", tests_patch)
    backend = LocalBackend(cache=RepoCache(tmp_path / "cache"), scratch=tmp_path / "sandboxes")
    patches = {"agent1": agent1_patch or "", "agent2": task.feature(2).gold_patch}
    return evaluate(task, [2], patches, backend, test_timeout=120)


def test_evaluate_marks_a_malicious_agent_patch_failed(tmp_path, dataset_copy):
    victim = tmp_path / "victim"
    victim.mkdir()
    outcome = _evaluate(tmp_path, dataset_copy, attacks(victim)["symlink then a file through it"][0])
    assert outcome.patch_status == {"agent1": "failed", "agent2": "applied"}
    assert "points outside the repository" in outcome.patch_status["agent1"].reason
    assert (outcome.merge_status, outcome.error_kind) == ("error", "agent")
    _no_pwned(tmp_path)


def test_evaluate_records_why_an_agent_patch_failed(tmp_path, dataset_copy):
    victim = tmp_path / "victim"
    victim.mkdir()
    outcome = _evaluate(tmp_path, dataset_copy, attacks(victim)["hook in .git"][0])
    assert "path inside .git" in outcome.error


def test_evaluate_refuses_a_malicious_tests_patch(tmp_path, dataset_copy):
    victim = tmp_path / "victim"
    victim.mkdir()
    with pytest.raises(PatchRejected, match="tests.patch rejected: symlink"):
        _evaluate(tmp_path, dataset_copy, tests_patch=attacks(victim)["symlink to an absolute path"][0])
    _no_pwned(tmp_path)


def test_dataset_validate_reports_malicious_patches(tmp_path, dataset_copy):
    victim = tmp_path / "victim"
    victim.mkdir()
    ds = _plant(dataset_copy, 1, "feature.patch", attacks(victim)["absolute path"][0])
    _plant(dataset_copy, 2, "tests.patch", attacks(victim)["symlink climbing out"][0])
    task = ds.tasks[0]
    for n in set(task.features) - {1, 2}:  # keep the run short: only the two planted features
        shutil.rmtree(task.feature(n).path)
    proc = run_cli("dataset", "validate", "--dataset", str(dataset_copy), "-r", task.repo, "-t",
                   str(task.task_id), "--json", timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    problems = {(p["feature"], p["problem"]) for p in json.loads(proc.stdout)}
    assert problems == {
        (1, f"feature.patch rejected: absolute path 'a/{victim}/pwned' (line 1) (and 2 more problem(s))"),
        (2, "tests.patch rejected: symlink 'a/b/pwned_link' points outside the repository: '../../../victim'"),
    }, proc.stdout
    _no_pwned(tmp_path)


def test_dataset_conflicts_reports_a_malicious_gold_patch(tmp_path, dataset_copy):
    victim = tmp_path / "victim"
    victim.mkdir()
    ds = _plant(dataset_copy, 1, "feature.patch", attacks(victim)["hook in .git"][0])
    task = ds.tasks[0]
    found = conflicts(ds, [Pair(task.repo, task.task_id, (1, 2)), Pair(task.repo, task.task_id, (2, 3))],
                      RepoCache(tmp_path / "cache"))
    assert found[0]["status"] == "error"
    assert found[0]["error"].startswith("feature 1: gold patch rejected: path inside .git")
    assert found[1]["status"] in ("clean", "conflicts")
    _no_pwned(tmp_path)


def _run_gold(tmp_path, dataset_copy, monkeypatch):
    from cooperbench import db
    from cooperbench.experiment import ExperimentSpec, agent_run_id
    from cooperbench.pipeline import evaluate_pair, run_agent

    monkeypatch.setenv("COOPERBENCH_CACHE", str(tmp_path / "cache"))
    victim = tmp_path / "victim"
    victim.mkdir()
    ds = _plant(dataset_copy, 1, "feature.patch", attacks(victim)["file replaced by a symlink"][0])
    task = ds.tasks[0]
    database = f"sqlite:///{tmp_path / 'r.db'}"
    spec = ExperimentSpec(name="evil", setting="solo", agent="gold", messaging=False, dataset=str(dataset_copy),
                          logs=str(tmp_path / "logs"), test_timeout=120)
    pair = Pair(task.repo, task.task_id, (1, 2))
    summary = run_agent(spec, pair, "solo", pair.features, None, database)
    row = db.get(database, db.AgentRun, agent_run_id(spec.name, pair, "solo"))
    _no_pwned(tmp_path)
    return summary, row, lambda: evaluate_pair(spec, pair, None, database)


def test_gold_agent_refuses_a_malicious_gold_patch(tmp_path, dataset_copy, monkeypatch):
    from cooperbench.experiment import ExperimentSpec
    from cooperbench.pipeline import run_agent

    summary, row, _ = _run_gold(tmp_path, dataset_copy, monkeypatch)
    assert summary["status"] == "Error"
    assert "rejected: symlink" in row.error and "points outside the repository" in row.error, row.error
    assert not (row.patch or "").strip(), "nothing was applied"
    task = Dataset(dataset_copy).tasks[0]  # an untouched pair of the same task still works
    spec = ExperimentSpec(name="fine", setting="solo", agent="gold", messaging=False, dataset=str(dataset_copy),
                          logs=str(tmp_path / "logs"))
    fine = run_agent(spec, Pair(task.repo, task.task_id, (2, 3)), "solo", (2, 3), None,
                     f"sqlite:///{tmp_path / 'r.db'}")
    assert fine["status"] == "Submitted", fine


def test_gold_agent_malicious_patch_is_bad_input(tmp_path, dataset_copy, monkeypatch):
    _, row, evaluate_it = _run_gold(tmp_path, dataset_copy, monkeypatch)
    assert row.error.startswith("bad input: "), row.error
    assert evaluate_it()["error_kind"] == "input"
