"""Agents and sandbox backends from another package (entry points), and infrastructure failures.

`tests/plugins` holds a stand-in third-party package with a `*.dist-info` folder, so on
PYTHONPATH its entry points are found exactly as an installed package's would be.
"""

import json
from pathlib import Path

from cooperbench.store import db

from .conftest import run_cli

PLUGINS = Path(__file__).resolve().parent / "plugins"


def _env(tmp_path):
    return {
        "PYTHONPATH": str(PLUGINS),
        "COOPERBENCH_DB_URL": f"sqlite:///{tmp_path / 'r.db'}",
        "COOPERBENCH_LOGS": str(tmp_path / "logs"),
    }


def test_an_agent_from_another_package_runs_in_the_farm(dataset_dir, tmp_path):
    proc = run_cli(
        "run",
        "-n",
        "plug",
        "-a",
        "touch",
        "--dataset",
        str(dataset_dir),
        "-r",
        "memkv_task",
        "-f",
        "1,3",
        "--json",
        env=_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    (rec,) = json.loads(proc.stdout)
    assert rec["patch_status"] == {"agent1": "applied", "agent2": "applied"}
    assert rec["merge_status"] == "clean" and rec["error"] is None
    assert not rec["both_passed"]  # a file of its own implements neither feature
    runs = {r.agent_id: r for r in db.query(f"sqlite:///{tmp_path / 'r.db'}", db.AgentRun, experiment="plug")}
    assert "touched-1.txt" in runs["agent1"].patch and "touched-3.txt" in runs["agent2"].patch


def test_an_infrastructure_failure_is_counted_as_such_and_retried(dataset_dir, tmp_path):
    args = ("run", "-n", "infra", "--backend", "broken", "--dataset", str(dataset_dir), "-r", "memkv_task", "-f", "1,3")
    env = {**_env(tmp_path), "COOPERBENCH_INFRA_BACKOFF": "0.5"}  # its retries, without the default 30 s + 60 s
    proc = run_cli(*args, env=env)
    # every pair unscored: the totals say so, and the run fails plainly instead of a quiet 0/0
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "infrastructure errors: 1" in proc.stdout and "both passed: 0/0" in proc.stdout
    assert "nothing was graded: 1 infrastructure and 0 evaluation error(s)" in proc.stderr
    database = f"sqlite:///{tmp_path / 'r.db'}"
    (rec,) = json.loads(run_cli("status", "-n", "infra", "--json", env=_env(tmp_path)).stdout)
    assert (rec["status"], rec["merge_status"], rec["error_kind"]) == ("error", "missing_input", "infra")
    assert not rec["both_passed"] and "agent1" in rec["error"]
    first = {r.agent_id: (r.status, r.started_at) for r in db.query(database, db.AgentRun, experiment="infra")}
    assert {s for s, _ in first.values()} == {"InfraError"}

    again = run_cli(*args, env=env)  # not done, so running again retries it
    assert again.returncode == 1 and "nothing was graded" in again.stderr, again.stderr
    second = {r.agent_id: r.started_at for r in db.query(database, db.AgentRun, experiment="infra")}
    assert all(second[a] > first[a][1] for a in first)


def test_unknown_plugin_names_are_one_line_errors(dataset_dir, tmp_path):
    proc = run_cli("run", "-n", "x", "-a", "touchy", "--dataset", str(dataset_dir), env=_env(tmp_path))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "unknown agent 'touchy'" in proc.stderr and "touch" in proc.stderr
