"""Typed retries: a transient infrastructure failure (a sandbox that does not start) is retried with
backoff inside the same run; an agent's own failure is final and never retried."""

from pathlib import Path

from cooperbench import api, db

from ..conftest import Worker

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


def test_infrastructure_failures_are_retried_and_agent_failures_are_not(redis_url, tmp_path, dataset_copy,
                                                                        monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))  # the `flaky` backend's package, as the worker has it
    flaky = tmp_path / "flaky"
    flaky.mkdir()
    # feature 1's gold patch is broken: that agent fails on its own, which must not be retried
    (dataset_copy / "memkv_task" / "task2" / "feature1" / "feature.patch").write_text("not a patch\n")
    database = f"sqlite:///{tmp_path / 'r.db'}"
    worker = Worker(redis_url, database, tmp_path / "worker.log", concurrency=2,
                    extra_env={"PYTHONPATH": str(PLUGINS), "COOPERBENCH_FLAKY_DIR": str(flaky),
                               "COOPERBENCH_INFRA_BACKOFF": "0.2"})
    try:
        recs = api.run("retried", agent="gold", setting="coop", backend="flaky", dataset=str(dataset_copy),
                       repo="memkv_task", features=(3,), broker=redis_url, db_url=database,
                       logs=str(tmp_path / "logs"), timeout=300)
    finally:
        worker.stop()
    by_pair = {tuple(r["features"]): r for r in recs}
    assert len(by_pair) == 4 and len(list(flaky.iterdir())) == 8  # every agent's first sandbox failed
    assert by_pair[(1, 3)]["error_kind"] == "agent" and "gold patch does not apply" in by_pair[(1, 3)]["error"]
    for features in ((2, 3), (3, 5)):  # these merge cleanly (dataset/README.md)
        assert by_pair[features]["both_passed"] and by_pair[features]["error"] is None, by_pair[features]
    assert by_pair[(3, 4)]["merge_status"] == "conflicts" and by_pair[(3, 4)]["error"] is None
    runs = {r.id.split("|", 1)[1]: r for r in db.query(database, db.AgentRun, experiment="retried")}
    assert len(runs) == 8 and runs["memkv_task/task2/f1-f3|agent1"].status == "Error"
    assert sum(r.status == "Submitted" for r in runs.values()) == 7
    log = (tmp_path / "worker.log").read_text()
    assert log.count("retry: Retry in") == 8  # one per agent: the sandbox hiccup, never the agent's own error
