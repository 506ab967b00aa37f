"""Timings of the farm's hot paths on the bundled dataset: sandbox start, gold-conflict check, a whole run.

    python bench/bench_farm.py [--pairs-run]     # from the repository root, in the project's venv

Everything runs in a temporary folder (cache, database, logs), so the first repository
clone is measured apart from the reuse that follows. See bench/README.md for figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def describe(name: str, samples: list[float]) -> None:
    med = statistics.median(samples)
    print(f"{name:48} median {med * 1000:8.1f} ms   min {min(samples) * 1000:8.1f} ms   n={len(samples)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs-run", action="store_true", help="also time a whole embedded gold run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cooperbench-bench-"))
    os.environ.update(
        COOPERBENCH_CACHE=str(work / "cache"),
        COOPERBENCH_LOGS=str(work / "logs"),
        COOPERBENCH_DB_URL=f"sqlite:///{work / 'bench.db'}",
    )

    from cooperbench import api
    from cooperbench.data.dataset import Dataset
    from cooperbench.data.repocache import RepoCache
    from cooperbench.grading.checks import conflicts
    from cooperbench.sandbox import get_backend

    ds = Dataset(ROOT / "dataset")
    task = ds.tasks[0]
    cache = RepoCache()
    describe(
        "first clone of an upstream (mirror + base)", timed(lambda: cache.base(task.repo_url, task.base_commit), 1)
    )
    describe("base reused from the cache", timed(lambda: cache.base(task.repo_url, task.base_commit), 20))

    backend = get_backend("local")
    describe("local sandbox: create + close", timed(lambda: backend.create(task, labels={}).close(), 20))
    sandbox = backend.create(task, labels={})
    describe(
        "local sandbox: confined `true` (bwrap)" if backend.use_bwrap else "local sandbox: `true`",
        timed(lambda: sandbox.exec("true", timeout=30), 20),
    )
    sandbox.close()

    pairs = ds.pairs()
    describe(f"dataset conflicts, all {len(pairs)} gold pairs", timed(lambda: conflicts(ds, pairs), 5))

    if args.pairs_run:
        for setting in ("solo", "coop"):
            t0 = time.perf_counter()
            recs = api.run(f"bench-{setting}", agent="gold", setting=setting, dataset=str(ROOT / "dataset"))
            took = time.perf_counter() - t0
            print(
                f"embedded gold {setting} run, {len(recs)} pairs: {took:.1f} s ({60 * len(recs) / took:.0f} pairs/min)"
            )
            t0 = time.perf_counter()
            api.run(f"bench-{setting}", agent="gold", setting=setting, dataset=str(ROOT / "dataset"))
            print(f"the same run again (nothing to do): {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
