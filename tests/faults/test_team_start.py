"""A team on a worker pool smaller than the team: it must not hang, and must not be scored as the agents'."""

import time

from cooperbench import api
from cooperbench.store import db

from ..conftest import Worker


def test_a_team_on_a_pool_of_one_ends_as_an_infrastructure_error(redis_url, tmp_path):
    database = f"sqlite:///{tmp_path / 'r.db'}"
    worker = Worker(redis_url, database, tmp_path / "worker.log", concurrency=1)
    try:
        started = time.monotonic()
        (rec,) = api.run(
            "pool-of-one",
            agent="gold",
            repo="memkv_task",
            features=(1, 3),
            broker=redis_url,
            db_url=database,
            logs=str(tmp_path / "logs"),
            team_start_timeout=3,
            timeout=120,
        )
        took = time.monotonic() - started
    finally:
        worker.stop()
    assert took < 60  # bounded: one wait per agent, then the pair is recorded
    assert (rec["status"], rec["error_kind"], rec["merge_status"]) == ("error", "infra", "missing_input")
    assert not rec["both_passed"]
    runs = db.query(database, db.AgentRun, experiment="pool-of-one")
    assert sorted(r.agent_id for r in runs) == ["agent1", "agent2"]
    for r in runs:
        assert r.status == "InfraError" and "did not start within 3 s" in r.error, r.error
        assert "worker pool smaller than a team" in r.error
