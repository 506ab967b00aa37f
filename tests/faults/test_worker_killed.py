"""A worker killed with SIGKILL mid-agent or mid-evaluation: the task is delivered again to another
worker, the experiment completes, and every row exists exactly once.

The broker's visibility timeout keeps its default (6 hours): the dead worker's tasks come back
through its lease (farm/leases.py), shortened here to 10 s with a look every second so the test
is quick; tests/faults/test_worker_lease.py shows the default (60 s) within about a minute.
"""

import threading
import time
from pathlib import Path

import yaml

from cooperbench import api
from cooperbench.store import db

from ..conftest import Worker
from ..fake_openai import FakeOpenAI, Hold

FAST_RESTORE = {
    "COOPERBENCH_LEASE_TTL": "10",
    "COOPERBENCH_REAP_INTERVAL": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "OPENAI_API_KEY": "sk-test-fault",
}
SUBMIT = "Done.\n\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"


def _wait_for(condition, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _rows(database, experiment):
    return {
        model.__name__: sorted(r.id for r in db.query(database, model, experiment=experiment))
        for model in (db.PairRun, db.AgentRun, db.Evaluation)
    }


def test_worker_killed_mid_agent(redis_url, tmp_path, dataset_dir):
    database = f"sqlite:///{tmp_path / 'r.db'}"
    killed = threading.Event()
    # the model is slow on the first call: the worker dies while the agent waits for it
    with FakeOpenAI({"slow": [Hold(killed.is_set, SUBMIT, timeout=120), SUBMIT]}) as fake:
        (tmp_path / "agent.yaml").write_text(
            yaml.safe_dump({"retry_base_delay": 0.01, "retry_max": 1, "model_kwargs": {"api_base": fake.base_url}})
        )
        first = Worker(redis_url, database, tmp_path / "first.log", concurrency=2, extra_env=FAST_RESTORE)
        api.run(
            "killed-agent",
            agent="mini_swe_agent",
            model="openai/slow",
            setting="solo",
            repo="memkv_task",
            features=(1, 3),
            dataset=str(dataset_dir),
            broker=redis_url,
            db_url=database,
            logs=str(tmp_path / "logs"),
            agent_config=str(tmp_path / "agent.yaml"),
            wait=False,
        )
        _wait_for(lambda: fake.requests, what="the agent's first model call")
        first.kill()
        killed.set()
        second = Worker(redis_url, database, tmp_path / "second.log", concurrency=2, extra_env=FAST_RESTORE)
        try:
            _wait_for(
                lambda: [r.status for r in db.query(database, db.PairRun, experiment="killed-agent")] == ["done"],
                timeout=120,
                what="the pair to finish on the second worker",
            )
        finally:
            second.stop()
    assert _rows(database, "killed-agent") == {
        "PairRun": ["killed-agent|memkv_task/task2/f1-f3"],
        "AgentRun": ["killed-agent|memkv_task/task2/f1-f3|solo"],
        "Evaluation": ["killed-agent|memkv_task/task2/f1-f3|1", "killed-agent|memkv_task/task2/f1-f3|3"],
    }
    (run,) = db.query(database, db.AgentRun, experiment="killed-agent")
    assert run.status == "Submitted" and run.steps == 1  # the redelivered run, once
    assert "cooperbench.agent" in Path(tmp_path / "second.log").read_text()


def test_worker_killed_mid_evaluation(redis_url, tmp_path, dataset_copy):
    task_dir = dataset_copy / "memkv_task" / "task2"
    script = task_dir / "run_tests.sh"
    # the evaluation's first test run is slow, so the worker can be killed in the middle of it
    marker = tmp_path / "slow-once"
    script.write_text(
        script.read_text().replace(
            "set -euo pipefail\n", f"set -euo pipefail\nif [ ! -e {marker} ]; then touch {marker}; sleep 30; fi\n", 1
        )
    )
    database = f"sqlite:///{tmp_path / 'r.db'}"
    first = Worker(
        redis_url,
        database,
        tmp_path / "first.log",
        concurrency=2,
        extra_env={**FAST_RESTORE, "COOPERBENCH_NO_BWRAP": "1"},
    )
    api.run(
        "killed-eval",
        agent="gold",
        setting="solo",
        repo="memkv_task",
        features=(1, 3),
        dataset=str(dataset_copy),
        broker=redis_url,
        db_url=database,
        logs=str(tmp_path / "logs"),
        wait=False,
    )
    _wait_for(marker.exists, what="the evaluation's first test run")
    agent_rows = [(r.id, r.finished_at) for r in db.query(database, db.AgentRun, experiment="killed-eval")]
    first.kill()
    second = Worker(
        redis_url,
        database,
        tmp_path / "second.log",
        concurrency=2,
        extra_env={**FAST_RESTORE, "COOPERBENCH_NO_BWRAP": "1"},
    )
    try:
        _wait_for(
            lambda: [r.status for r in db.query(database, db.PairRun, experiment="killed-eval")] == ["done"],
            timeout=120,
            what="the evaluation to finish on the second worker",
        )
    finally:
        second.stop()
    (rec,) = api.status("killed-eval", db_url=database)
    assert rec["both_passed"] and rec["error"] is None, rec
    assert _rows(database, "killed-eval")["Evaluation"] == [
        "killed-eval|memkv_task/task2/f1-f3|1",
        "killed-eval|memkv_task/task2/f1-f3|3",
    ]
    # the agent had finished before the kill: it was not run again
    assert [(r.id, r.finished_at) for r in db.query(database, db.AgentRun, experiment="killed-eval")] == agent_rows
