"""Submission at scale: 10,000 pairs to a broker holding 100,000 unrelated keys, against an empty broker.

    python bench/bench_submit.py [--features 142] [--junk 100000]   # from the repository root, in the venv

Each broker is a private `redis-server` on a free loopback port started here (never the
machine's shared server); the results database is a temporary SQLite file (or `--db URL`).
No worker runs: this times `plan` and the sending of the chords, then a second submit of
the same experiment once every pair is recorded done (a finished experiment: a no-op).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from scale_task import make


def fill(url: str, count: int) -> None:
    """`count` unrelated keys, as a farm's broker holds (old Celery results, other experiments' mailboxes)."""
    import redis

    client = redis.Redis.from_url(url)
    with client.pipeline(transaction=False) as p:
        for i in range(count):
            p.set(f"celery-task-meta-unrelated-{i}", "x" * 64)
            if i % 10000 == 9999:
                p.execute()
        p.execute()
    assert client.dbsize() >= count


def one(dataset: Path, junk: int, database: str, name: str) -> dict[str, float]:
    from sqlalchemy import update

    from cooperbench import api
    from cooperbench.farm import submit as workflow
    from cooperbench.farm.app import create_app
    from cooperbench.farm.embedded import private_redis
    from cooperbench.statuses import PairStatus
    from cooperbench.store import db

    ds, pairs = api.select_pairs(str(dataset))
    spec = api.make_spec(name, ds, agent="gold", setting="solo")
    with private_redis() as url:
        fill(url, junk)
        app = create_app(url)
        try:
            t0 = time.perf_counter()
            sent = workflow.submit(app, spec, pairs, database, mailbox_url=url)
            first = time.perf_counter() - t0
            assert len(sent) == len(pairs)
            with db.engine(database).begin() as conn:  # the workers did every pair
                conn.execute(update(db.PairRun).where(db.PairRun.experiment == name).values(status=PairStatus.DONE))
            t0 = time.perf_counter()
            again = workflow.submit(app, spec, pairs, database, mailbox_url=url)
            second = time.perf_counter() - t0
            assert again == {}
            t0 = time.perf_counter()  # the whole command: select the pairs, plan, read every record back
            recs = api.run(name, agent="gold", setting="solo", dataset=str(dataset), broker=url, db_url=database)
            whole = time.perf_counter() - t0
            assert len(recs) == len(pairs)
        finally:
            workflow.release(app)
            app.close()
    return {"pairs": len(pairs), "first": first, "second": second, "whole": whole}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=142, help="142 features: 10,011 pairs")
    parser.add_argument("--junk", type=int, default=100_000, help="unrelated keys in the loaded broker")
    parser.add_argument("--db", help="results database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cooperbench-bench-submit-"))
    os.environ.setdefault("COOPERBENCH_CACHE", str(work / "cache"))
    os.environ.setdefault("COOPERBENCH_LOGS", str(work / "logs"))  # the experiment's inputs land there
    make(work / "dataset", args.features)
    database = args.db or f"sqlite:///{work / 'bench.db'}"
    empty = one(work / "dataset", 0, database, "empty-broker")
    loaded = one(work / "dataset", args.junk, database, "loaded-broker")
    n = loaded["pairs"]
    print(
        f"submit {n} pairs, empty broker:           {empty['first']:7.2f} s ({1000 * empty['first'] / n:.2f} ms/pair)"
    )
    print(
        f"submit {n} pairs, {args.junk} unrelated keys: {loaded['first']:7.2f} s "
        f"({1000 * loaded['first'] / n:.2f} ms/pair)  ratio to empty: {loaded['first'] / empty['first']:.2f}"
    )
    print(
        f"second submit of the finished experiment: {loaded['second']:7.2f} s (empty broker: {empty['second']:.2f} s)"
    )
    print(f"`run` of the finished experiment (select the pairs, plan, read {n} records back): {loaded['whole']:.2f} s")


if __name__ == "__main__":
    main()
