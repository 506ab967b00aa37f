"""Storage that fits a farm, on SQLite and PostgreSQL: set-based writes and deletes, the indexes the
status and plan queries use (also added to an older database), and a bounded pool per process."""

import threading

from sqlalchemy import create_engine, inspect, text

from cooperbench.store import db

from ..conftest import new_postgres_database


def _pairs(experiment: str, n: int, **kw):
    return [
        db.PairRun(
            id=f"{experiment}|r/task0/f{i}",
            experiment=experiment,
            repo="r",
            task_id=0,
            features=f"{i},{i + 1}",
            setting="solo",
            **kw,
        )  # fmt: skip
        for i in range(n)
    ]


def test_replace_all_writes_many_rows_and_replaces_by_key(db_url):
    db.delete_experiment(db_url, "bulk")
    db.replace_all(db_url, _pairs("bulk", 1200, status="done", both_passed=True))
    db.replace_all(db_url, _pairs("bulk", 700, status="queued"))  # the first 700 again: replaced, not added
    status = db.column_map(db_url, db.PairRun, "status", experiment="bulk")
    assert len(status) == 1200
    assert sorted(status.values()).count("queued") == 700 and list(status.values()).count("done") == 500
    row = db.get(db_url, db.PairRun, "bulk|r/task0/f3")
    assert row.status == "queued" and row.both_passed is None  # a whole new row, as an upsert of it would be


def test_deletes_touch_only_the_named_rows(db_url):
    db.delete_experiment(db_url, "del")
    db.delete_experiment(db_url, "keep")
    db.replace_all(db_url, _pairs("del", 600) + _pairs("keep", 3))
    db.upsert(db_url, db.Experiment(name="del", setting="solo", agent="gold"))
    runs = [
        db.AgentRun(
            id=f"{p.id}|solo",
            experiment=p.experiment,
            pair_id=p.id,
            agent_id="solo",
            features=p.features,
            agent="gold",
            status="Submitted",
        )  # fmt: skip
        for p in _pairs("del", 600) + _pairs("keep", 3)
    ]
    db.upsert(db_url, *runs)
    db.delete_rows(db_url, db.AgentRun, "pair_id", [p.id for p in _pairs("del", 550)])
    assert len(db.query(db_url, db.AgentRun, experiment="del")) == 50
    db.delete_experiment(db_url, "del")
    assert db.query(db_url, db.PairRun, experiment="del") == [] and db.get(db_url, db.Experiment, "del") is None
    assert len(db.query(db_url, db.PairRun, experiment="keep")) == 3
    assert len(db.query(db_url, db.AgentRun, experiment="keep")) == 3


def test_an_older_database_gets_the_status_index():
    with new_postgres_database("cooperbench_idx") as url:
        old = create_engine(url)
        with old.begin() as conn:  # the pairrun table as an earlier version made it: no (experiment, status) index
            conn.execute(text("CREATE TABLE pairrun (id VARCHAR PRIMARY KEY, experiment VARCHAR NOT NULL)"))
        old.dispose()
        eng = db.engine(url)
        names = {i["name"] for i in inspect(eng).get_indexes("pairrun")}
        assert "ix_pairrun_experiment_status" in names


def test_each_process_holds_a_bounded_pool(monkeypatch):
    monkeypatch.setenv("COOPERBENCH_DB_POOL_SIZE", "2")
    with new_postgres_database("cooperbench_pool") as url:
        eng = db.engine(url)
        assert eng.pool.size() == 2 and eng.pool._max_overflow == 0
        holding, release = threading.Barrier(3), threading.Event()

        def hold():
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
                holding.wait()
                release.wait(10)

        threads = [threading.Thread(target=hold) for _ in range(2)]
        for t in threads:
            t.start()
        holding.wait()
        with create_engine(url).connect() as probe:  # what the server sees from this database's users
            count = probe.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar()
        release.set()
        for t in threads:
            t.join()
        assert count == 2


def test_columns_reads_tuples_even_of_one_column_and_the_budget_sums_them(db_url):
    from cooperbench.pair.budget import spent

    db.delete_experiment(db_url, "cost")
    runs = [
        db.AgentRun(
            id=f"cost|p{i}|solo",
            experiment="cost",
            pair_id=f"cost|p{i}",
            agent_id="solo",
            features="1,2",
            agent="gold",
            status="Submitted",
            usage=usage,
        )  # fmt: skip
        for i, usage in enumerate([{"cost_usd": 0.5}, {"cost_usd": 0.25, "earlier_attempts_cost_usd": 1.0}, {}])
    ]
    db.upsert(db_url, *runs)
    assert sorted(db.columns(db_url, db.AgentRun, ("usage",), experiment="cost"), key=str) == sorted(
        [(r.usage,) for r in runs], key=str
    )
    assert spent(db_url, "cost") == 1.75
