"""A machine that cannot confine agent commands: its `bwrap` cannot build its namespaces (as in many
containers), standing first on PATH as a machine's own would. An agent that must be confined is
refused before anything is recorded, or, on a worker, is an infrastructure error naming the cause
(never the agent's bad input, never scored); the trusted `gold` agent runs, unconfined, with a notice.
(Without any bubblewrap at all: `.ci/fresh-machine.sh`, in a container of plain Debian.)"""

import json
import os
from pathlib import Path

import pytest

from cooperbench.store import db

from ..conftest import Worker, drop_queued_work, run_cli

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
WHY = "bwrap: No permissions to create a new namespace"


@pytest.fixture
def unconfinable(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    bwrap = bin_dir / "bwrap"
    bwrap.write_text(f"#!/bin/sh\necho '{WHY}' >&2\nexit 1\n")
    bwrap.chmod(0o755)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(PLUGINS),
        "COOPERBENCH_DB_URL": f"sqlite:///{tmp_path / 'r.db'}",
        "COOPERBENCH_LOGS": str(tmp_path / "logs"),
    }


@pytest.mark.parametrize("agent", ["mini_swe_agent", "touch"])
def test_an_agent_that_must_be_confined_is_refused_up_front(agent, unconfinable, dataset_dir, tmp_path):
    proc = run_cli("run", "-n", "llm", "-a", agent, "--dataset", str(dataset_dir), "--no-preflight", env=unconfinable)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert f"cannot run the '{agent}' agent on the local backend" in line and WHY in line
    assert "apt-get install bubblewrap" in line and "--backend docker" in line
    status = run_cli("status", "-n", "llm", env=unconfinable)
    assert status.returncode == 1 and "no experiment named 'llm'" in status.stderr
    assert not (tmp_path / "logs").exists()  # not even the inputs were published


def test_the_gold_agent_runs_unconfined_with_a_notice(unconfinable, dataset_dir):
    proc = run_cli("run", "-n", "gold", "-a", "gold", "--dataset", str(dataset_dir), "-r", "memkv_task",
                   "-f", "1,2", "--json", env=unconfinable)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"{WHY}): the trusted agent's commands and tests run unconfined" in proc.stderr
    (rec,) = json.loads(proc.stdout)
    assert rec["both_passed"] and rec["error"] is None


def test_on_a_worker_that_cannot_confine_the_agent_is_an_unscored_infrastructure_error(
    unconfinable, dataset_dir, redis_url, tmp_path
):
    worker = Worker(redis_url, unconfinable["COOPERBENCH_DB_URL"], tmp_path / "worker.log", 2, unconfinable)
    try:
        proc = run_cli("submit", "-n", "far", "-a", "touch", "--dataset", str(dataset_dir), "-r", "memkv_task",
                       "-f", "1,3", "--broker", redis_url, "--wait", "--json", env=unconfinable)  # fmt: skip
    finally:
        worker.stop()
        drop_queued_work(redis_url)
    # never scored, and the run says so instead of ending with a quiet 0/0
    assert proc.returncode == 1 and "nothing was graded: 1 infrastructure" in proc.stderr, proc.stderr
    (rec,) = json.loads(proc.stdout)
    assert (rec["status"], rec["error_kind"]) == ("error", "infra") and not rec["both_passed"]
    runs = db.query(unconfinable["COOPERBENCH_DB_URL"], db.AgentRun, experiment="far")
    assert {r.status for r in runs} == {"InfraError"}  # not the agent's Error ("bad input")
    assert all("ConfinementUnavailable" in r.error and WHY in r.error for r in runs)
