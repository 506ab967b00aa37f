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


def _wait_recorded(database: str, names: list[str], timeout: float) -> dict[str, list]:
    deadline = time.monotonic() + timeout
    while True:
        rows = {n: db.query(database, db.PairRun, experiment=n) for n in names}
        if all(r and r[0].status != "queued" for r in rows.values()) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def test_a_waiting_teammate_holds_no_slot_so_a_team_completes_among_long_agent_runs(redis_url, tmp_path, monkeypatch):
    """A worker of two processes, one busy with another pair's long agent run: the first agent of
    a coop pair does not sit on the other slot waiting for its teammate (which would keep a
    third pair's long agent behind both). It is re-queued after a short hold, the slot runs the
    other long agent meanwhile, and the team runs together once slots free up: it completes."""
    from ..test_plugins import PLUGINS

    monkeypatch.syspath_prepend(str(PLUGINS))  # the `slow` agent's package, as the worker has it
    database = f"sqlite:///{tmp_path / 'r.db'}"
    env = {"PYTHONPATH": str(PLUGINS), "COOPERBENCH_TEAM_START_HOLD": "2", "COOPERBENCH_TEST_SLOW_SECONDS": "15"}
    worker = Worker(redis_url, database, tmp_path / "worker.log", concurrency=2, extra_env=env)
    common = dict(broker=redis_url, db_url=database, logs=str(tmp_path / "logs"), wait=False, preflight=False)
    try:
        api.run("long-1", agent="slow", setting="solo", repo="memkv_task", features=(1, 2), **common)
        time.sleep(3)  # its agent has a slot
        api.run("team", agent="gold", repo="memkv_task", features=(1, 3), team_start_timeout=180, **common)
        api.run("long-2", agent="slow", setting="solo", repo="memkv_task", features=(2, 3), **common)
        rows = _wait_recorded(database, ["long-1", "team", "long-2"], timeout=150)
    finally:
        worker.stop()
    log = (tmp_path / "worker.log").read_text()
    assert all(rows.values()), log[-3000:]
    (team,) = rows["team"]
    assert (team.status, team.error_kind, team.both_passed) == ("done", None, True), team.error
    (first,) = db.query(database, db.AgentRun, experiment="long-1")
    (second,) = db.query(database, db.AgentRun, experiment="long-2")
    # the second long run did not wait for the first to end: no slot sat idle behind a waiting agent
    assert second.started_at < first.finished_at, (first.started_at, first.finished_at, second.started_at)
    runs = db.query(database, db.AgentRun, experiment="team")
    assert sorted((r.agent_id, r.status) for r in runs) == [("agent1", "Submitted"), ("agent2", "Submitted")]
    assert "Retry in" in log  # a teammate was re-queued, not failed
