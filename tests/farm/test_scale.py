"""The farm at scale, with real `celery -A cooperbench worker` processes on a synthetic task (bench/scale_task.py):
evaluations on their own queue, and a thousand pairs end to end on PostgreSQL, each recorded exactly once."""

import importlib.util
import time

import pytest
import redis
from sqlalchemy import func, select
from sqlmodel import Session

from cooperbench import api
from cooperbench.statuses import AgentStatus, PairStatus
from cooperbench.store import db

from ..conftest import ROOT, Worker, new_postgres_database

_spec = importlib.util.spec_from_file_location("scale_task", ROOT / "bench" / "scale_task.py")
scale_task = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scale_task)


def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _count(database: str, model, **where) -> int:
    stmt = select(func.count()).select_from(model)
    for name, value in where.items():
        stmt = stmt.where(getattr(model, name) == value)
    with Session(db.engine(database)) as session:
        return session.execute(stmt).scalar()


def test_evaluations_wait_on_their_own_queue(redis_url, tmp_path):
    scale_task.make(tmp_path / "dataset", 3)
    database = f"sqlite:///{tmp_path / 'queues.db'}"
    agents = Worker(redis_url, database, tmp_path / "agents.log", concurrency=2, queues="cooperbench.agents")
    graders = None
    try:
        api.run("queues", agent="gold", setting="solo", broker=redis_url, db_url=database,
                dataset=str(tmp_path / "dataset"), logs=str(tmp_path / "logs"), wait=False)  # fmt: skip
        _until(lambda: _count(database, db.AgentRun, status=AgentStatus.SUBMITTED) == 3, 120, "the agents")
        time.sleep(1)
        assert _count(database, db.PairRun, status=PairStatus.QUEUED) == 3  # nobody grades yet
        assert redis.Redis.from_url(redis_url).llen("cooperbench.evaluations") == 3
        graders = Worker(redis_url, database, tmp_path / "graders.log", concurrency=1, queues="cooperbench.evaluations")
        _until(lambda: _count(database, db.PairRun, status=PairStatus.DONE) == 3, 120, "the evaluations")
    finally:
        agents.stop()
        if graders:
            graders.stop()
    recs = api.status("queues", db_url=database)
    assert len(recs) == 3 and all(r["both_passed"] for r in recs)


def test_a_hundred_pairs_end_to_end_on_postgresql(redis_url, tmp_path):
    end_to_end_on_postgresql(16, redis_url, tmp_path)  # 120 pairs: the sweep's case at a ninth of its size


@pytest.mark.sweep
def test_a_thousand_pairs_end_to_end_on_postgresql(redis_url, tmp_path):
    end_to_end_on_postgresql(46, redis_url, tmp_path)  # 1,035 pairs


def end_to_end_on_postgresql(features: int, redis_url: str, tmp_path) -> None:
    """Every pair of a synthetic task with `features` features, on two real workers and PostgreSQL,
    each recorded exactly once; a second submit of the finished experiment sends nothing."""
    FEATURES = features  # noqa: N806 - the constant it was
    scale_task.make(tmp_path / "dataset", FEATURES)
    pairs = FEATURES * (FEATURES - 1) // 2
    with new_postgres_database("cooperbench_scale") as database:
        workers = [Worker(redis_url, database, tmp_path / f"worker{i}.log", concurrency=2) for i in range(2)]
        try:
            t0 = time.monotonic()
            recs = api.run("thousand", agent="gold", setting="solo", broker=redis_url, db_url=database,
                           dataset=str(tmp_path / "dataset"), logs=str(tmp_path / "logs"), timeout=1500)  # fmt: skip
            took = time.monotonic() - t0
        finally:
            for w in workers:
                w.stop()
        print(f"{pairs} pairs in {took:.0f} s on {len(workers)} workers of 2 processes")
        assert len(recs) == pairs
        assert sorted({tuple(r["features"]) for r in recs}) == sorted(
            (a, b) for a in range(1, FEATURES + 1) for b in range(a + 1, FEATURES + 1)
        )
        bad = [(r["features"], r["status"], r["error"]) for r in recs if r["status"] != "done" or not r["both_passed"]]
        assert bad == []
        # every pair recorded exactly once: one pair row, one agent run, one evaluation per feature
        assert _count(database, db.PairRun, experiment="thousand") == pairs
        assert _count(database, db.AgentRun, experiment="thousand") == pairs
        assert _count(database, db.Evaluation, experiment="thousand") == 2 * pairs
        runs = db.query(database, db.AgentRun, experiment="thousand")
        assert all(r.status == AgentStatus.SUBMITTED and not r.usage.get("earlier_attempts_cost_usd") for r in runs)
        assert len({r.pair_id for r in runs}) == pairs
        # and a second submit of the finished experiment sends nothing
        t0 = time.monotonic()
        again = api.run("thousand", agent="gold", setting="solo", broker=redis_url, db_url=database,
                        dataset=str(tmp_path / "dataset"), logs=str(tmp_path / "logs"), timeout=60)  # fmt: skip
        assert len(again) == pairs and time.monotonic() - t0 < 30
