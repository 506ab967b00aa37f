"""A whole experiment with its artifacts in a bucket: a real worker process writes them to a
GCS-protocol server (gcp-storage-emulator), from a dataset it has no copy of, and `status`, `eval`
and `report` read them back from another working directory."""

from __future__ import annotations

import json
import shutil
import time

from cooperbench import api
from cooperbench.data.dataset import Dataset, Pair
from cooperbench.store import db
from cooperbench.store.artifacts import PairPaths
from cooperbench.store.backends import open_store
from tests.conftest import Worker

NAME = "bucket-gold"


def _wait_done(database: str, pairs: int, timeout: float = 600) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        recs = api.status(NAME, db_url=database)
        if len(recs) == pairs and all(r["status"] != "queued" for r in recs):
            return recs
        assert time.monotonic() < deadline, recs
        time.sleep(1)


def test_an_experiment_in_a_bucket_is_read_back_anywhere(emulator, redis_url, dataset_dir, tmp_path, monkeypatch):
    submitter, reader = tmp_path / "submitter", tmp_path / "reader"
    shutil.copytree(dataset_dir / "memkv_task", submitter / "dataset" / "memkv_task")
    (submitter / "agent.yaml").write_text("step_limit: 5\n")
    reader.mkdir()
    store_url = f"gs://{emulator.bucket}/farm"
    database = f"sqlite:///{tmp_path / 'farm.db'}"

    monkeypatch.chdir(submitter)
    queued = api.run(
        NAME,
        broker=redis_url,
        db_url=database,
        logs=store_url,
        dataset=submitter / "dataset",
        features=[1, 2, 3],
        agent="gold",
        agent_config="agent.yaml",
        wait=False,
    )
    assert len(queued) == 3
    shutil.rmtree(submitter / "dataset")  # the worker has no copy at the submitter's path, nor anywhere
    (submitter / "agent.yaml").unlink()

    worker = Worker(
        redis_url,
        database,
        tmp_path / "worker.log",
        concurrency=4,
        extra_env={
            "STORAGE_EMULATOR_HOST": emulator.host,
            "COOPERBENCH_CACHE": str(tmp_path / "worker-cache"),
            "COOPERBENCH_LOGS": str(tmp_path / "worker-logs"),
        },
    )
    try:
        monkeypatch.chdir(reader)
        recs = _wait_done(database, 3)
    finally:
        worker.stop()
    assert [(r["status"], r["error"]) for r in recs] == [("done", None)] * 3, (tmp_path / "worker.log").read_text()[
        -3000:
    ]
    assert any(r["both_passed"] for r in recs)
    assert (tmp_path / "worker-cache" / "inputs" / "tasks").is_dir()  # the worker used the store's copy
    assert not (tmp_path / "worker-logs").exists() and not (submitter / "logs").exists()

    # every artifact is in the bucket, and the database names it there
    store = open_store(store_url)
    for r in recs:
        paths = PairPaths.of(NAME, Pair(r["repo"], r["task_id"], tuple(r["features"])).key)
        for agent in ("agent1", "agent2"):
            assert store.exists(paths.patch(agent)) and store.exists(paths.trajectory(agent))
        assert all(store.exists(paths.eval_log(f)) for f in r["features"])
        assert len(json.loads(store.read(paths.messages))) == 2
        assert json.loads(store.read(paths.result))["both_passed"] == r["both_passed"]
    runs = db.query(database, db.AgentRun, experiment=NAME)
    evals = db.query(database, db.Evaluation, experiment=NAME)
    assert len(runs) == 6 and all(r.trajectory_path.startswith(f"{store_url}/{NAME}/") for r in runs)
    assert len(evals) == 6 and all(e.log_path.startswith(f"{store_url}/{NAME}/") for e in evals)

    # `eval` elsewhere, with no dataset folder: the tasks come from the store, the logs go back there
    pair = recs[0]
    result_key = PairPaths.of(NAME, Pair(pair["repo"], pair["task_id"], tuple(pair["features"])).key).result
    store.put_text(result_key, "stale")
    again = api.evaluate(NAME, db_url=database)
    assert [(r["both_passed"], r["feature_passed"]) for r in again] == [
        (r["both_passed"], r["feature_passed"]) for r in recs
    ]
    assert json.loads(store.read(result_key))["both_passed"] == pair["both_passed"]
    assert not (reader / "logs").exists()

    # `report` elsewhere: each pair's page shows the test logs and the agents' steps, read from the bucket
    api.report([NAME], db_url=database, fmt="html", output=reader / "report")
    for r in recs:
        key = Pair(r["repo"], r["task_id"], tuple(r["features"])).key
        paths = PairPaths.of(NAME, key)
        (page,) = (reader / "report" / "pairs").glob("*" + key.replace("/", "_") + ".html")
        html = page.read_text()
        assert "(no log recorded)" not in html and "not readable" not in html
        for f in r["features"]:  # each test log's pytest summary line, read from the bucket
            summary = [ln for ln in store.read(paths.eval_log(f)).decode().splitlines() if " in " in ln][-1]
            assert summary.strip() in html, summary
        for agent, f in zip(("agent1", "agent2"), r["features"], strict=True):  # the agents' own steps
            assert json.loads(store.read(paths.trajectory(agent)))["trajectory"]
            assert f"feature {f}: ok" in html
    assert Dataset(dataset_dir).task("memkv_task", 2)  # (the bundled dataset itself was never touched)
