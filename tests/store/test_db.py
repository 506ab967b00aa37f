"""Result rows on SQLite and PostgreSQL: tables created, writes idempotent, unreachable databases are user errors."""

import threading

import pytest

from cooperbench.errors import UserError
from cooperbench.store import db

from ..conftest import new_postgres_database


def _pair(**kw):
    base = dict(id="e|r_task/task1/f1-f2", experiment="e", repo="r_task", task_id=1, features="1,2", setting="coop")
    return db.PairRun(**{**base, **kw})


def test_writes_are_idempotent(db_url):
    db.upsert(db_url, db.Experiment(name="e", setting="coop", agent="gold"))
    for _ in range(3):
        db.upsert(db_url, _pair(status="queued"))
    db.upsert(db_url, _pair(status="done", merge_status="clean", both_passed=True, patch_status={"agent1": "applied"}))
    rows = db.query(db_url, db.PairRun, experiment="e")
    assert len(rows) == 1
    assert rows[0].status == "done" and rows[0].both_passed and rows[0].patch_status == {"agent1": "applied"}


def test_concurrent_duplicate_deliveries_leave_one_row(db_url):
    def deliver(i):
        db.upsert(
            db_url,
            db.AgentRun(
                id="e|p|agent1",
                experiment="e",
                pair_id="e|p",
                agent_id="agent1",
                features="1",
                agent="gold",
                status="Submitted",
                patch=f"patch {i % 2}",
            ),
        )

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = db.query(db_url, db.AgentRun, pair_id="e|p")
    assert len(rows) == 1 and rows[0].patch in ("patch 0", "patch 1")


def test_large_text_and_messages_round_trip(db_url):
    big = "+" + "x" * 2_000_000 + "\n"
    db.upsert(
        db_url,
        db.AgentRun(
            id="e|p|solo",
            experiment="e",
            pair_id="e|p",
            agent_id="solo",
            features="1,2",
            agent="gold",
            status="Submitted",
            patch=big,
            usage={"tokens": 3},
        ),
    )
    db.upsert(
        db_url,
        *[
            db.MessageRow(
                id=f"e|p|{i}",
                experiment="e",
                pair_id="e|p",
                seq=i,
                sender="agent1",
                recipient="agent2",
                body=f"m{i}",
                sent_at=float(i),
            )
            for i in range(3)
        ],
    )
    assert db.get(db_url, db.AgentRun, "e|p|solo").patch == big
    assert [m.body for m in sorted(db.query(db_url, db.MessageRow, pair_id="e|p"), key=lambda m: m.seq)] == [
        "m0",
        "m1",
        "m2",
    ]


def test_unreachable_database_is_a_one_line_user_error():
    with pytest.raises(UserError, match="cannot open database") as info:
        db.engine("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(info.value) and "\n" not in str(info.value)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db_url(request, tmp_path):
    """An empty database of the test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with new_postgres_database("cooperbench_old") as url:
        yield url


def test_a_database_of_an_earlier_version_gets_the_new_columns(fresh_db_url):
    from sqlalchemy import create_engine, text
    from sqlmodel import SQLModel

    from cooperbench.store.results import records

    old = create_engine(fresh_db_url)  # the tables as an earlier version made them, with a result in them
    SQLModel.metadata.create_all(old)
    with old.begin() as conn:
        conn.execute(text("ALTER TABLE pairrun DROP COLUMN disruption"))
        conn.execute(text("ALTER TABLE evaluation DROP COLUMN timed_out"))
        conn.execute(
            text(
                "INSERT INTO pairrun (id, experiment, repo, task_id, features, setting, status, "
                "both_passed, clean_success, submitted_at) VALUES ('e|r/task1/f1-f2', 'e', 'r', 1, "
                "'1,2', 'coop', 'done', true, true, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO evaluation (id, experiment, pair_id, feature, passed, tests_passed, "
                "tests_failed, duration) VALUES ('e|r/task1/f1-f2|1', 'e', 'e|r/task1/f1-f2', 1, true, "
                "3, 0, 1.0)"
            )
        )
    old.dispose()

    db.engine(fresh_db_url)
    assert db.add_missing_columns(db.engine(fresh_db_url)) == []  # added once, by the first open
    (rec,) = records(fresh_db_url, "e")
    assert (rec["both_passed"], rec["disruption"], rec["feature_passed"]) == (True, None, {"1": True})
    db.upsert(
        fresh_db_url,
        _pair(id="e|r/task1/f2-f3", features="2,3", disruption="agent1 lost agent2 mid-run"),
        db.Evaluation(
            id="e|r/task1/f2-f3|2", experiment="e", pair_id="e|r/task1/f2-f3", feature=2, passed=False, timed_out=True
        ),
    )
    assert db.get(fresh_db_url, db.Evaluation, "e|r/task1/f2-f3|2").timed_out is True
    assert [r["disruption"] for r in records(fresh_db_url, "e")] == [None, "agent1 lost agent2 mid-run"]
