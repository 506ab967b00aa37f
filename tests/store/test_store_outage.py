"""A store that cannot be reached when a pair's artifacts are written is an infrastructure error
of that step (retried by the farm), never a final result without its artifacts."""

from __future__ import annotations

from cooperbench.data.dataset import Dataset, Pair
from cooperbench.experiment import ExperimentSpec
from cooperbench.pair.agent_step import run_agent
from cooperbench.pair.eval_step import evaluate_pair
from cooperbench.store import db


def test_an_unreachable_store_makes_the_steps_infra_errors_and_a_later_try_keeps_all(
    emulator, dataset_copy, tmp_path, monkeypatch
):
    monkeypatch.setenv("COOPERBENCH_ARTIFACTS_RETRIES", "1")
    monkeypatch.setenv("COOPERBENCH_ARTIFACTS_BACKOFF", "0.05")
    task = Dataset(dataset_copy).tasks[0]
    database = f"sqlite:///{tmp_path / 'r.db'}"
    spec = ExperimentSpec(
        name="outage",
        setting="solo",
        agent="gold",
        messaging=False,
        dataset=str(dataset_copy),
        logs=f"gs://{emulator.bucket}/farm",
        test_timeout=300,
    )
    pair = Pair(task.repo, task.task_id, (1, 2))
    emulator.stop()
    try:
        summary = run_agent(spec, pair, "solo", pair.features, None, database)
        assert summary["status"] == "InfraError" and summary["retryable"], summary
        assert "artifact store gs://" in summary["error"] and "writing outage/" in summary["error"]
    finally:
        emulator.start()
    summary = run_agent(spec, pair, "solo", pair.features, None, database)  # the farm's retry
    assert summary["status"] == "Submitted", summary
    (run,) = db.query(database, db.AgentRun, experiment="outage")
    assert run.trajectory_path.startswith(f"gs://{emulator.bucket}/farm/outage/")

    emulator.stop()
    try:
        result = evaluate_pair(spec, pair, None, database)
        assert result["error_kind"] == "infra" and result["status"] == "error", result
        assert "artifact store" in result["error"]
    finally:
        emulator.start()
    result = evaluate_pair(spec, pair, None, database)
    assert result["error_kind"] is None and result["both_passed"], result
    assert all(e.log_path.startswith("gs://") for e in db.query(database, db.Evaluation, experiment="outage"))
