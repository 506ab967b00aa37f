"""The command line as a user meets it: embedded run, status JSON, dataset checks, and bad input."""

import json

import pytest

from cooperbench.data.dataset import Dataset

from .conftest import run_cli

STATUS_KEYS = {"repo", "task_id", "features", "setting", "merge_status", "both_passed", "clean_success", "error"}


def _one_line_error(proc):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    return lines[0]


@pytest.fixture
def user_dir(tmp_path, dataset_dir):
    """A fresh working folder with the dataset at ./dataset, as after a clone."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "dataset").symlink_to(dataset_dir)
    env = {
        "COOPERBENCH_DB_URL": f"sqlite:///{work / 'cooperbench.db'}",
        "COOPERBENCH_LOGS": str(work / "logs"),
        "COOPERBENCH_DATASET": "",
    }
    return work, env


def test_embedded_run_then_status_json(user_dir, dataset_dir):
    work, env = user_dir
    task = Dataset(dataset_dir).tasks[-1]
    proc = run_cli("run", "-n", "demo", "-a", "gold", "-r", task.repo, "-t", str(task.task_id), env=env, cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "both passed" in proc.stdout and "infrastructure errors: 0" in proc.stdout
    status = run_cli("status", "-n", "demo", "--json", env=env, cwd=work)
    recs = json.loads(status.stdout)
    assert len(recs) == len(task.features) * (len(task.features) - 1) // 2
    for r in recs:
        assert STATUS_KEYS <= set(r)
        assert r["features"] == sorted(r["features"]) and r["setting"] == "coop"
        assert r["merge_status"] in ("clean", "conflicts")
    assert (work / "logs" / "demo" / task.repo / f"task{task.task_id}").is_dir()

    again = run_cli("eval", "-n", "demo", "--json", env=env, cwd=work)
    assert again.returncode == 0, again.stderr
    assert [(r["features"], r["both_passed"]) for r in json.loads(again.stdout)] == [
        (r["features"], r["both_passed"]) for r in recs
    ]


def test_dataset_list_and_conflicts_json(dataset_dir):
    listed = run_cli("dataset", "list", "--dataset", str(dataset_dir), "--json")
    assert listed.returncode == 0
    pairs = json.loads(listed.stdout)
    assert len(pairs) == len(Dataset(dataset_dir).pairs())
    found = run_cli("dataset", "conflicts", "--dataset", str(dataset_dir), "--json")
    assert found.returncode == 0, found.stderr
    records = json.loads(found.stdout)
    assert [(r["repo"], r["task_id"], r["features"]) for r in records] == [
        (p["repo"], p["task_id"], p["features"]) for p in pairs
    ]
    assert {r["status"] for r in records} == {"clean", "conflicts"}


def test_dataset_validate_passes_on_bundled_dataset(dataset_dir):
    proc = run_cli("dataset", "validate", "--dataset", str(dataset_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 problem(s)" in proc.stdout


def test_dataset_validate_reports_each_violation(dataset_copy):
    task = Dataset(dataset_copy).tasks[0]
    f1, f2 = task.feature(1).path, task.feature(2).path
    (f1 / "feature.patch").write_text("")  # gold no longer makes the tests pass
    (f2 / "tests.patch").unlink()
    proc = run_cli("dataset", "validate", "--dataset", str(dataset_copy), "-r", task.repo, "--json")
    assert proc.returncode == 1
    problems = {(p["feature"], p["problem"].split(" (")[0]) for p in json.loads(proc.stdout)}
    assert problems == {(1, "tests do not pass with the gold patch"), (2, "missing tests.patch")}


@pytest.mark.parametrize(
    "args, message",
    [
        (["-r", "nope_task"], "unknown repo 'nope_task'"),
        (["-t", "424242"], "unknown task 424242"),
        (["-f", "99"], "no pair with feature(s) 99"),
        (["-f", "x,y"], "bad feature list"),
        (["-s", "nope"], "unknown subset 'nope'"),
        (["-a", "nope"], "unknown agent 'nope'"),
        (["--backend", "nope"], "unknown sandbox backend 'nope'"),
        (["--dataset", "/does/not/exist"], "dataset folder not found"),
    ],
)
def test_bad_selection_is_one_line(dataset_dir, args, message, tmp_path):
    proc = run_cli(
        "run",
        "-n",
        "bad",
        "--dataset",
        str(dataset_dir),
        *args,
        env={"COOPERBENCH_DB_URL": f"sqlite:///{tmp_path / 'x.db'}"},
    )
    assert message in _one_line_error(proc)


def test_unreachable_broker_and_database_are_one_line(dataset_dir, tmp_path):
    proc = run_cli(
        "submit",
        "-n",
        "x",
        "--dataset",
        str(dataset_dir),
        "--broker",
        "redis://127.0.0.1:1/0",
        "--db",
        f"sqlite:///{tmp_path / 'x.db'}",
    )
    assert "cannot reach the broker" in _one_line_error(proc)
    proc = run_cli("run", "-n", "x", "--dataset", str(dataset_dir), "--db", "postgresql+psycopg://u:pw@127.0.0.1:1/x")
    line = _one_line_error(proc)
    assert "cannot open database" in line and "pw" not in line
    proc = run_cli("submit", "-n", "x", "--dataset", str(dataset_dir), env={"COOPERBENCH_BROKER_URL": ""})
    assert "no broker configured" in _one_line_error(proc)
    proc = run_cli("status", "-n", "never-ran", "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert "no experiment named 'never-ran'" in _one_line_error(proc)


def test_broken_pairs_are_recorded_and_the_rest_complete(dataset_copy, tmp_path):
    ds = Dataset(dataset_copy)
    task = ds.tasks[0]
    (task.feature(1).path / "feature.patch").write_text("this is not a patch\n")
    (task.feature(2).path / "tests.patch").unlink()
    env = {"COOPERBENCH_DB_URL": f"sqlite:///{tmp_path / 'r.db'}", "COOPERBENCH_LOGS": str(tmp_path / "logs")}
    proc = run_cli(
        "run", "-n", "broken", "-a", "gold", "--dataset", str(dataset_copy), "-r", task.repo, "--json", env=env
    )
    assert proc.returncode == 0, proc.stderr
    recs = {tuple(r["features"]): r for r in json.loads(proc.stdout)}
    assert len(recs) == len(task.features) * (len(task.features) - 1) // 2
    for features, r in recs.items():
        if features == (1, 2):
            assert r["error_kind"] in ("agent", "input") and not r["both_passed"]
        elif 1 in features:
            assert r["error_kind"] == "agent" and "gold patch does not apply" in r["error"], r
            assert not r["both_passed"]
        elif 2 in features:
            assert r["error_kind"] == "input" and "missing tests.patch" in r["error"], r
            assert not r["both_passed"]
        else:
            assert r["error"] is None and r["merge_status"] in ("clean", "conflicts")


def test_dataset_validate_honours_feature_and_subset_filters(dataset_copy):
    task = Dataset(dataset_copy).tasks[0]
    (task.feature(1).path / "feature.patch").write_text("")  # feature 1 is broken, feature 2 is fine
    one = run_cli("dataset", "validate", "--dataset", str(dataset_copy), "-r", task.repo, "-f", "2", "--json")
    assert one.returncode == 0 and json.loads(one.stdout) == []  # only feature 2 was checked
    both = run_cli("dataset", "validate", "--dataset", str(dataset_copy), "-r", task.repo, "-f", "1,2")
    assert both.returncode == 1 and "2 feature(s): 1 problem(s)" in both.stdout
    lite = run_cli("dataset", "validate", "--dataset", str(dataset_copy), "-s", "lite", "-r", "minicalc_task")
    assert lite.returncode == 0 and "1 task(s), 3 feature(s): 0 problem(s)" in lite.stdout  # pairs 1-3 and 3-4


def test_commands_that_call_no_model_do_not_load_litellm():
    """litellm's import loads (and, online, downloads) its price data: a bad option or `status` must not wait for it
    or print its warnings; only a model call loads it."""
    import subprocess
    import sys

    code = (
        "import sys; from cooperbench.agents import default_model, get_agent; "
        "assert default_model('mini_swe_agent'); get_agent('mini_swe_agent'); "
        "import cooperbench.cli, cooperbench.farm.tasks; print('litellm' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "False", "")
