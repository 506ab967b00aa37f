"""Typed retries: a transient infrastructure failure (a sandbox that does not start) is retried with
backoff inside the same run; an agent's own failure is final and never retried."""

from pathlib import Path

from cooperbench import api
from cooperbench.store import db

from ..conftest import Worker

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


def _run_on_flaky(redis_url, tmp_path, monkeypatch, name, setting, dataset, features):
    """Run gold on the `flaky` backend (every agent's first sandbox fails) with a real worker of two
    processes and a short backoff: (records, the flaky backend's markers, database, worker log)."""
    monkeypatch.syspath_prepend(str(PLUGINS))  # the `flaky` backend's package, as the worker has it
    flaky = tmp_path / "flaky"
    flaky.mkdir()
    database = f"sqlite:///{tmp_path / 'r.db'}"
    worker = Worker(
        redis_url,
        database,
        tmp_path / "worker.log",
        concurrency=2,
        extra_env={"PYTHONPATH": str(PLUGINS), "COOPERBENCH_FLAKY_DIR": str(flaky), "COOPERBENCH_INFRA_BACKOFF": "0.2"},
    )
    try:
        recs = api.run(
            name,
            agent="gold",
            setting=setting,
            backend="flaky",
            dataset=str(dataset),
            repo="memkv_task",
            features=features,
            broker=redis_url,
            db_url=database,
            logs=str(tmp_path / "logs"),
            timeout=300,
        )
    finally:
        worker.stop()
    return recs, list(flaky.iterdir()), database, (tmp_path / "worker.log").read_text()


def test_infrastructure_failures_are_retried_and_agent_failures_are_not(redis_url, tmp_path, dataset_copy, monkeypatch):
    # feature 1's gold patch is broken: that agent fails on its own, which must not be retried
    (dataset_copy / "memkv_task" / "task2" / "feature1" / "feature.patch").write_text("not a patch\n")
    recs, markers, database, log = _run_on_flaky(
        redis_url, tmp_path, monkeypatch, "retried", "coop", dataset_copy, (3,)
    )
    by_pair = {tuple(r["features"]): r for r in recs}
    assert len(by_pair) == 4 and len(markers) == 8  # every agent's first sandbox failed
    assert by_pair[(1, 3)]["error_kind"] == "agent" and "gold patch does not apply" in by_pair[(1, 3)]["error"]
    for features in ((2, 3), (3, 5)):  # these merge cleanly (dataset/README.md)
        assert by_pair[features]["both_passed"] and by_pair[features]["error"] is None, by_pair[features]
    assert by_pair[(3, 4)]["merge_status"] == "conflicts" and by_pair[(3, 4)]["error"] is None
    runs = {r.id.split("|", 1)[1]: r for r in db.query(database, db.AgentRun, experiment="retried")}
    assert len(runs) == 8 and runs["memkv_task/task2/f1-f3|agent1"].status == "Error"
    assert sum(r.status == "Submitted" for r in runs.values()) == 7
    assert log.count("retry: Retry in") == 8  # one per agent: the sandbox hiccup, never the agent's own error


def test_a_solo_agent_retried_still_leads_to_its_evaluation(redis_url, tmp_path, dataset_dir, monkeypatch):
    """A solo pair is a chain (agent task, then evaluation): the agent task's retry keeps the chain,
    so the evaluation runs once the retried agent has ended."""
    recs, markers, database, log = _run_on_flaky(
        redis_url, tmp_path, monkeypatch, "retried-solo", "solo", dataset_dir, (2, 3, 5)
    )
    assert len(recs) == 3 and len(markers) == 3  # every agent's first sandbox failed
    assert all(r["both_passed"] and r["error"] is None for r in recs), recs
    assert log.count("retry: Retry in") == 3
    assert len(db.query(database, db.Evaluation, experiment="retried-solo")) == 6  # two features a pair, once


def test_what_a_failed_attempt_cost_is_still_counted(tmp_path, monkeypatch):
    """A sandbox lost mid-run is the farm's failure; the model calls made before it were paid, so they
    stay in the row (and in the experiment's spending) through the retry that then succeeds."""
    import shutil

    import yaml

    from cooperbench.data.dataset import Pair
    from cooperbench.experiment import ExperimentSpec, agent_run_id
    from cooperbench.pair.agent_step import run_agent
    from cooperbench.pair.budget import spent

    from ..conftest import DATASET
    from ..fake_openai import Answer, FakeOpenAI, Hold

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-retry")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv("COOPERBENCH_SCRATCH", str(tmp_path / "sandboxes"))

    def sandbox_lost():  # the agent's working copy vanishes while the model thinks
        for folder in (tmp_path / "sandboxes").iterdir():
            shutil.rmtree(folder)
        return True

    priced = dict(prompt_tokens=10_000, completion_tokens=10)  # gpt-4o has a known price
    script = [
        Hold(sandbox_lost, Answer("Look.\n\n```bash\nls\n```", **priced)),
        Answer("Done.\n\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```", **priced),
    ]
    database = f"sqlite:///{tmp_path / 'r.db'}"
    pair = Pair("memkv_task", 2, (1, 3))
    with FakeOpenAI({"gpt-4o": script}) as fake:
        (tmp_path / "agent.yaml").write_text(
            yaml.safe_dump({"retry_base_delay": 0.01, "model_kwargs": {"api_base": fake.base_url}})
        )
        spec = ExperimentSpec(
            name="paid",
            setting="solo",
            agent="mini_swe_agent",
            model="openai/gpt-4o",
            dataset=str(DATASET),
            logs=str(tmp_path / "logs"),
            agent_config=str(tmp_path / "agent.yaml"),
        )
        first = run_agent(spec, pair, "solo", pair.features, None, database)
        failed = db.get(database, db.AgentRun, agent_run_id("paid", pair, "solo"))
        second = run_agent(spec, pair, "solo", pair.features, None, database)
    assert (first["status"], first["retryable"], second["status"]) == ("InfraError", True, "Submitted")
    assert "SandboxError" in failed.error and failed.steps == 1
    one_call = failed.usage["cost_usd"]
    assert one_call > 0.01
    row = db.get(database, db.AgentRun, agent_run_id("paid", pair, "solo"))
    assert row.usage["earlier_attempts_cost_usd"] == one_call and row.usage["cost_usd"] > 0.01
    assert spent(database, "paid") == one_call + row.usage["cost_usd"]
    assert len(fake.requests) == 2
