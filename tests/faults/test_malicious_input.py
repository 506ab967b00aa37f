"""Malicious or broken patches (dataset gold/tests patches, agent patches) are refused, never applied,
and a dataset's own files that link out of their task folder, are not files or are huge are never read.

Every attack targets files named `pwned*` in a `victim` folder next to the repository (or
inside the repository's `.git`); after each attempt no such file exists anywhere. Where
git alone would already refuse, the test records that too, so it is clear which refusals
are git's and which are ours (cooperbench.grading.patchcheck). The task-file attacks link to a
`secret` file next to the dataset; afterwards its content is in no output and no file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cooperbench.data.dataset import MAX_TASK_FILE_BYTES, Dataset, Pair, read_task_file
from cooperbench.data.repocache import RepoCache
from cooperbench.errors import UserError
from cooperbench.grading import patchcheck
from cooperbench.grading.checks import conflicts
from cooperbench.grading.merge_and_test import apply_on_branch, merge_and_test, run_feature_tests
from cooperbench.grading.patchcheck import PatchRejected, check_patch, ensure_safe, patch_error
from cooperbench.sandbox import images
from cooperbench.sandbox.local import LocalBackend

from ..conftest import run_cli


def _new_file(path: str, body: str = "PWNED", mode: str = "100644") -> str:
    return (
        f"diff --git a/{path} b/{path}\nnew file mode {mode}\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+{body}\n"
        "\\ No newline at end of file\n"
    )


def attacks(victim: Path) -> dict[str, tuple[str, str, bool]]:
    """name -> (patch, the words of our refusal, whether git alone refuses it too)."""
    v = str(victim)
    return {
        "dotdot in every header": (_new_file("../victim/pwned"), "escapes the repository", True),
        "dotdot only in +++": (
            "diff --git a/ok b/ok\nnew file mode 100644\n--- /dev/null\n+++ b/../victim/pwned\n@@ -0,0 +1 @@\n+x\n",
            "escapes the repository",
            True,
        ),
        "dotdot in the middle": (_new_file("src/../../victim/pwned"), "escapes the repository", True),
        "absolute path": (_new_file(f"{v}/pwned"), "absolute path", True),
        "plain diff with absolute names": (
            f"--- {v}/pwned\n+++ {v}/pwned\n@@ -0,0 +1 @@\n+x\n",
            "absolute path",
            False,
        ),  # git writes <repo>/<v minus 1st dir>/pwned
        "quoted octal dotdot": (
            'diff --git "a/\\056\\056/victim/pwned" "b/\\056\\056/victim/pwned"\n'
            'new file mode 100644\n--- /dev/null\n+++ "b/\\056\\056/victim/pwned"\n'
            "@@ -0,0 +1 @@\n+x\n",
            "escapes the repository",
            True,
        ),
        "hook in .git": (_new_file(".git/hooks/pwned", mode="100755"), "inside .git", True),
        "hook in .GIT": (_new_file(".GIT/hooks/pwned"), "inside .git", True),
        "nested .git": (_new_file("sub/.git/pwned"), "inside .git", True),
        "rename out": (
            "diff --git a/lib.py b/../victim/pwned\nsimilarity index 100%\nrename from lib.py\n"
            "rename to ../victim/pwned\n",
            "escapes the repository",
            True,
        ),
        "rename in from outside": (
            f"diff --git a/lib.py b/pwned\nsimilarity index 100%\nrename from {v}/x\nrename to pwned\n",
            "absolute path",
            True,
        ),
        "copy out": (
            "diff --git a/lib.py b/../victim/pwned\nsimilarity index 100%\ncopy from lib.py\ncopy to ../victim/pwned\n",
            "escapes the repository",
            True,
        ),
        "symlink to an absolute path": (_new_file("pwned_link", v, mode="120000"), "points outside", False),
        "symlink climbing out": (
            _new_file("a/b/pwned_link", "../../../victim", mode="120000"),
            "points outside",
            False,
        ),
        "symlink into .git": (_new_file("pwned_link", ".git/hooks", mode="120000"), "points into .git", False),
        "symlink then a file through it": (
            _new_file("pwned_link", v, mode="120000") + _new_file("pwned_link/pwned"),
            "points outside",
            True,
        ),
        "file replaced by a symlink": (
            "diff --git a/lib.py b/lib.py\ndeleted file mode 100644\n--- a/lib.py\n+++ /dev/null\n"
            "@@ -1,2 +0,0 @@\n-def f():\n-    return 2\n" + _new_file("lib.py", v, mode="120000"),
            "points outside",
            False,
        ),
        "mode change to a symlink": (
            "diff --git a/lib.py b/lib.py\nold mode 100644\nnew mode 120000\n",
            "into a symlink",
            True,
        ),
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
    binary = (
        "diff --git a/b.bin b/b.bin\nnew file mode 100644\nindex 0000000..1111111\nGIT binary patch\n"
        f"literal {patchcheck.MAX_FILE_BYTES + 1}\nzcmV\n\nliteral 0\nHcmV?d00001\n\n"
    )
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
        proc = subprocess.run(["git", "apply", "--index", "-"], cwd=repo, input=patch, capture_output=True, text=True)
        assert (proc.returncode != 0) == git_refuses, (name, proc.stderr)
        assert not list(victim.iterdir()), name  # git never writes outside, even when it accepts
        _git(repo, "reset", "-q", "--hard")
        _git(repo, "clean", "-qfdx")


@pytest.fixture
def sandbox(eval_sandbox):
    assert eval_sandbox.exec("git checkout -q -B cb-base", timeout=30, confined=False).exit_code == 0
    return eval_sandbox


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
    good = (
        "diff --git a/lib.py b/lib.py\n--- a/lib.py\n+++ b/lib.py\n"
        "@@ -1,2 +1,2 @@\n def f():\n-    return 2\n+    return 3\n"
    )
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
    return merge_and_test(task, [2], patches, backend, test_timeout=120)


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
    proc = run_cli(
        "dataset",
        "validate",
        "--dataset",
        str(dataset_copy),
        "-r",
        task.repo,
        "-t",
        str(task.task_id),
        "--json",
        timeout=120,
    )
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
    found = conflicts(
        ds,
        [Pair(task.repo, task.task_id, (1, 2)), Pair(task.repo, task.task_id, (2, 3))],
        RepoCache(tmp_path / "cache"),
    )
    assert found[0]["status"] == "error"
    assert found[0]["error"].startswith("feature 1: gold patch rejected: path inside .git")
    assert found[1]["status"] in ("clean", "conflicts")
    _no_pwned(tmp_path)


def _run_gold(tmp_path, dataset_copy, monkeypatch):
    monkeypatch.setenv("COOPERBENCH_CACHE", str(tmp_path / "cache"))
    victim = tmp_path / "victim"
    victim.mkdir()
    _plant(dataset_copy, 1, "feature.patch", attacks(victim)["file replaced by a symlink"][0])
    ran = _gold_solo(tmp_path, dataset_copy, "evil")
    _no_pwned(tmp_path)
    return ran


def _gold_solo(tmp_path, dataset, name):
    """A solo gold run of features 1 and 2 of the dataset's first task: (summary, its AgentRun row, evaluate it)."""
    from cooperbench.experiment import ExperimentSpec, agent_run_id
    from cooperbench.pair.agent_step import run_agent
    from cooperbench.pair.eval_step import evaluate_pair
    from cooperbench.store import db

    task = Dataset(dataset).tasks[0]
    database = f"sqlite:///{tmp_path / 'r.db'}"
    spec = ExperimentSpec(
        name=name,
        setting="solo",
        agent="gold",
        messaging=False,
        dataset=str(dataset),
        logs=str(tmp_path / "logs"),
        test_timeout=120,
    )
    pair = Pair(task.repo, task.task_id, (1, 2))
    summary = run_agent(spec, pair, "solo", pair.features, None, database)
    row = db.get(database, db.AgentRun, agent_run_id(spec.name, pair, "solo"))
    return summary, row, lambda: evaluate_pair(spec, pair, None, database)


def test_gold_agent_refuses_a_malicious_gold_patch(tmp_path, dataset_copy, monkeypatch):
    from cooperbench.experiment import ExperimentSpec
    from cooperbench.pair.agent_step import run_agent

    summary, row, _ = _run_gold(tmp_path, dataset_copy, monkeypatch)
    assert summary["status"] == "Error"
    assert "rejected: symlink" in row.error and "points outside the repository" in row.error, row.error
    assert not (row.patch or "").strip(), "nothing was applied"
    task = Dataset(dataset_copy).tasks[0]  # an untouched pair of the same task still works
    spec = ExperimentSpec(
        name="fine",
        setting="solo",
        agent="gold",
        messaging=False,
        dataset=str(dataset_copy),
        logs=str(tmp_path / "logs"),
    )
    fine = run_agent(
        spec, Pair(task.repo, task.task_id, (2, 3)), "solo", (2, 3), None, f"sqlite:///{tmp_path / 'r.db'}"
    )
    assert fine["status"] == "Submitted", fine


def test_gold_agent_malicious_patch_is_bad_input(tmp_path, dataset_copy, monkeypatch):
    _, row, evaluate_it = _run_gold(tmp_path, dataset_copy, monkeypatch)
    assert row.error.startswith("bad input: "), row.error
    assert evaluate_it()["error_kind"] == "input"


# --- the dataset's own files (cooperbench.data.dataset.read_task_file) ---------------------------------

SECRET = "TOP-SECRET-7f3a9c-never-read"


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    return secret


def _link(path: Path, target: Path | str) -> None:
    """Replace the task file `path` by a symlink to `target`."""
    path.unlink(missing_ok=True)
    path.symlink_to(target)


def _secret_nowhere(root: Path, *texts: str) -> None:
    """The secret's content is in no output and in no file under `root` but the secret itself."""
    for text in texts:
        assert SECRET not in text
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.name != "secret":
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_feature_file_linking_out_of_its_task_is_refused_unread(tmp_path, dataset_copy):
    secret = _secret(tmp_path)
    feature = Dataset(dataset_copy).tasks[0].feature(1)
    for name, read in (
        ("feature.md", lambda: feature.spec),
        ("feature.patch", lambda: feature.gold_patch),
        ("tests.patch", lambda: feature.tests_patch),
    ):
        original = (feature.path / name).read_bytes()
        _link(feature.path / name, secret)
        with pytest.raises(UserError) as caught:
            read()
        message = str(caught.value)
        assert message == f"task file {feature.path / name} refused: it leads outside its task folder, to {secret}"
        assert SECRET not in message
        (feature.path / name).unlink()
        (feature.path / name).write_bytes(original)
    task = Dataset(dataset_copy).tasks[0]
    with pytest.raises(UserError, match="leads outside its task folder"):  # `..` is refused the same way
        read_task_file(task.path, "../../../secret")


def test_a_gold_run_with_a_feature_patch_linking_out_is_bad_input(tmp_path, dataset_copy, monkeypatch):
    monkeypatch.setenv("COOPERBENCH_SCRATCH", str(tmp_path / "sandboxes"))
    monkeypatch.setenv("COOPERBENCH_CACHE", str(tmp_path / "cache"))
    secret = _secret(tmp_path)
    _link(Dataset(dataset_copy).tasks[0].feature(1).path / "feature.patch", secret)
    summary, row, evaluate_it = _gold_solo(tmp_path, dataset_copy, "leak")
    assert summary["status"] == "Error"
    assert row.error.startswith("bad input: task file ") and "feature1/feature.patch refused" in row.error, row.error
    result = evaluate_it()
    assert result["error_kind"] == "input", result
    _secret_nowhere(tmp_path, json.dumps(result), row.error, row.patch or "")


def test_run_tests_sh_linking_out_is_never_copied_into_a_sandbox(tmp_path, dataset_copy):
    secret = _secret(tmp_path)
    task = Dataset(dataset_copy).tasks[0]
    _link(task.path / "run_tests.sh", secret)
    backend = LocalBackend(cache=RepoCache(tmp_path / "cache"), scratch=tmp_path / "sandboxes")
    sandbox = backend.create(task, labels={"pair": task.key, "agent": "eval"})
    try:
        with pytest.raises(UserError, match=r"run_tests.sh refused: it leads outside its task folder"):
            run_feature_tests(sandbox, task, task.feature(2))
        _secret_nowhere(tmp_path / "sandboxes")  # the sandbox is still open: nothing of the secret in it
    finally:
        sandbox.close()
    with pytest.raises(UserError, match="run_tests.sh refused"):  # and the whole evaluation refuses
        merge_and_test(task, [2], {"agent2": task.feature(2).gold_patch}, backend, test_timeout=120)


def test_evaluate_pair_reports_run_tests_sh_linking_out_as_bad_input(tmp_path, dataset_copy, monkeypatch):
    from cooperbench.experiment import ExperimentSpec
    from cooperbench.pair.agent_step import run_agent
    from cooperbench.pair.eval_step import evaluate_pair

    monkeypatch.setenv("COOPERBENCH_SCRATCH", str(tmp_path / "sandboxes"))
    monkeypatch.setenv("COOPERBENCH_CACHE", str(tmp_path / "cache"))
    task = Dataset(dataset_copy).tasks[0]
    _link(task.path / "run_tests.sh", _secret(tmp_path))
    database = f"sqlite:///{tmp_path / 'r.db'}"
    spec = ExperimentSpec(
        name="leak",
        setting="solo",
        agent="gold",
        messaging=False,
        dataset=str(dataset_copy),
        logs=str(tmp_path / "logs"),
        test_timeout=120,
    )
    pair = Pair(task.repo, task.task_id, (1, 2))
    assert run_agent(spec, pair, "solo", pair.features, None, database)["status"] == "Submitted"
    result = evaluate_pair(spec, pair, None, database)
    assert result["error_kind"] == "input", result
    assert result["error"].startswith("bad input: task file ") and "run_tests.sh refused" in result["error"]
    _secret_nowhere(tmp_path, json.dumps(result))


def test_a_huge_task_file_is_refused_without_being_read(tmp_path, dataset_copy):
    task = Dataset(dataset_copy).tasks[0]
    huge = task.feature(2).path / "tests.patch"
    huge.write_bytes(b"")
    os.truncate(huge, 1024**3)  # sparse: no disk used; reading it would take long and need GiBs of memory
    message = f"task file {huge} refused: {1024**3} bytes, over the limit of {MAX_TASK_FILE_BYTES}"
    with pytest.raises(UserError) as caught:
        task.feature(2).tests_patch
    assert str(caught.value) == message
    backend = LocalBackend(cache=RepoCache(tmp_path / "cache"), scratch=tmp_path / "sandboxes")
    with pytest.raises(UserError, match="over the limit"):
        merge_and_test(task, [2], {"agent2": task.feature(2).gold_patch}, backend, test_timeout=120)
    # a patch over the patch checker's own limit but under the file limit still gets its message
    assert MAX_TASK_FILE_BYTES > patchcheck.MAX_PATCH_BYTES
    os.truncate(huge, patchcheck.MAX_PATCH_BYTES + 1024**2)
    with pytest.raises(PatchRejected, match=r"tests.patch rejected: patch is \d+ bytes, over the limit"):
        merge_and_test(task, [2], {"agent2": task.feature(2).gold_patch}, backend, test_timeout=120)


def test_a_task_file_that_is_not_a_regular_file_is_refused(tmp_path, dataset_copy):
    feature = Dataset(dataset_copy).tasks[0].feature(1)
    fifo = feature.path / "feature.patch"
    fifo.unlink()
    os.mkfifo(fifo)  # opening it to read would block for ever
    with pytest.raises(UserError, match=r"feature.patch refused: not a regular file"):
        feature.gold_patch
    _link(fifo, "/dev/zero")
    with pytest.raises(UserError, match="leads outside its task folder, to /dev/zero"):
        feature.gold_patch


def test_a_symlink_inside_the_task_folder_still_works(tmp_path, dataset_copy):
    task = Dataset(dataset_copy).tasks[0]
    shared = task.path / "shared"
    shared.mkdir()
    f2 = task.feature(2).path
    gold = task.feature(2).gold_patch
    for name in ("feature.patch", "tests.patch"):
        (f2 / name).rename(shared / f"f2-{name}")
        (f2 / name).symlink_to(f"../shared/f2-{name}")
    (task.path / "run_tests.sh").rename(shared / "run_tests.sh")
    (task.path / "run_tests.sh").symlink_to("shared/run_tests.sh")
    assert task.feature(2).gold_patch == gold
    assert read_task_file(task.path, "feature2/../run_tests.sh") == (shared / "run_tests.sh").read_bytes()
    assert images.build_hash(task.path)  # the image's build inputs are read through the same check
    backend = LocalBackend(cache=RepoCache(tmp_path / "cache"), scratch=tmp_path / "sandboxes")
    outcome = merge_and_test(task, [2], {"agent2": gold}, backend, test_timeout=120)
    assert [(f.feature, f.passed) for f in outcome.features] == [(2, True)], outcome
    _link(task.path / "runner.sh", _secret(tmp_path))  # a build input linking out is refused too
    with pytest.raises(UserError, match="runner.sh refused: it leads outside"):
        images.build_hash(task.path)


def test_dataset_validate_reports_a_task_file_linking_out(tmp_path, dataset_copy):
    secret = _secret(tmp_path)
    task = Dataset(dataset_copy).tasks[0]
    script = task.path / "run_tests.sh"
    original = script.read_bytes()
    select = ("--dataset", str(dataset_copy), "-r", task.repo, "-t", str(task.task_id), "-f", "1", "--json")
    _link(script, secret)
    proc = run_cli("dataset", "validate", *select, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert json.loads(proc.stdout) == [
        {
            "task": task.key,
            "feature": None,
            "problem": f"task file {script} refused: it leads outside its task folder, to {secret}",
        }
    ]
    script.unlink()
    script.write_bytes(original)
    patch = task.feature(1).path / "feature.patch"
    _link(patch, secret)
    proc = run_cli("dataset", "validate", *select, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert json.loads(proc.stdout) == [
        {
            "task": task.key,
            "feature": 1,
            "problem": f"task file {patch} refused: it leads outside its task folder, to {secret}",
        }
    ]
    assert SECRET not in proc.stdout + proc.stderr


def test_a_run_with_one_task_linking_out_records_the_other_tasks(tmp_path, dataset_copy):
    broken = Dataset(dataset_copy).tasks[0]
    _link(broken.path / "run_tests.sh", _secret(tmp_path))
    env = {
        "COOPERBENCH_DB_URL": f"sqlite:///{tmp_path / 'r.db'}",
        "COOPERBENCH_LOGS": str(tmp_path / "logs"),
        "COOPERBENCH_SCRATCH": str(tmp_path / "sandboxes"),
    }
    proc = run_cli(
        "run",
        "-n",
        "one-broken",
        "-a",
        "gold",
        "--dataset",
        str(dataset_copy),
        "-f",
        "1,2",
        "--json",
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    records = {r["repo"]: r for r in json.loads(proc.stdout)}
    assert len(records) == len(Dataset(dataset_copy).tasks) == 3
    for repo, r in records.items():
        if repo == broken.repo:
            assert r["error_kind"] == "input" and "run_tests.sh refused" in r["error"], r
            assert not r["both_passed"]
        else:
            assert r["error"] is None and r["merge_status"] in ("clean", "conflicts"), r
    _secret_nowhere(tmp_path, proc.stdout, proc.stderr)
