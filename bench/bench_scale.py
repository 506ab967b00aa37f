"""Farm time per pair against the bare work, measured in one run, on a synthetic scale task.

    python bench/bench_scale.py [--features 32] [--concurrency 2] [--rounds 1]   # 32 features: 496 pairs

The farm: `api.run` with no broker (the embedded farm: a private Redis, an in-process worker
with `--concurrency` threads), gold agent, solo setting. The baseline is the same work done by a
plain loop, `--concurrency` pairs at a time: copy the base working copy, apply both gold patches
under bubblewrap, capture the diff, copy the base again, apply the diff, run each feature's test
script under bubblewrap. The ratio is the farm's own cost per pair. With `--rounds N` the two are
alternated N times (each farm round a new experiment) and the medians printed: on a shared or
noisy machine one round's ratio moves by a third with the load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scale_task import REPO, TASK_ID, make


def _sh(argv: list[str], cwd: Path, stdin: str | None = None) -> str:
    return subprocess.run(argv, cwd=cwd, input=stdin, check=True, capture_output=True, text=True).stdout


def _confined(command: str, workdir: Path, cwd: Path) -> list[str]:
    if shutil.which("bwrap") is None:
        return ["bash", "-c", command]
    return [
        "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net", "--unshare-pid",
        "--die-with-parent", "--bind", str(workdir), str(workdir), "--chdir", str(cwd), "bash", "-c", command,
    ]  # fmt: skip


def bare_pair(base: Path, task: Path, scratch: Path, features: tuple[int, int]) -> bool:
    """One pair's work with nothing of the farm around it; True if both features' tests pass."""
    work = scratch / uuid.uuid4().hex[:8]
    work.mkdir()
    try:
        repo = work / "repo"
        _sh(["cp", "-a", "--reflink=auto", str(base), str(repo)], work)
        patches = " ".join(str(task / f"feature{n}" / "feature.patch") for n in features)
        _sh(_confined(f"for p in {patches}; do git apply $p; done", work, repo), repo)
        _sh(["git", "add", "-A"], repo)
        diff = _sh(["git", "diff", "--cached", "--binary"], repo)
        merged = work / "merged"
        _sh(["cp", "-a", "--reflink=auto", str(base), str(merged)], work)
        (work / "agent.patch").write_text(diff)
        _sh(["git", "apply", str(work / "agent.patch")], merged)
        _sh(["git", "add", "-A"], merged)
        _sh(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "merged"], merged)
        ok = True
        for n in features:
            _sh(["git", "reset", "-q", "--hard"], merged)
            _sh(["git", "clean", "-qfd"], merged)
            command = f"bash {task / 'run_tests.sh'} {merged} {task / f'feature{n}' / 'tests.patch'}"
            ok &= subprocess.run(_confined(command, work, merged), cwd=merged, capture_output=True).returncode == 0
        return ok
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="bare loop and farm alternated; medians printed")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cooperbench-bench-scale-"))
    os.environ.update(
        COOPERBENCH_CACHE=str(work / "cache"),
        COOPERBENCH_LOGS=str(work / "logs"),
        COOPERBENCH_DB_URL=f"sqlite:///{work / 'bench.db'}",
    )
    os.environ.pop("COOPERBENCH_BROKER_URL", None)
    make(work / "dataset", args.features)

    from cooperbench import api
    from cooperbench.data.dataset import Dataset
    from cooperbench.data.repocache import RepoCache

    ds = Dataset(work / "dataset")
    task = ds.task(REPO, TASK_ID)
    pairs = ds.pairs()
    base = RepoCache().base(task.repo_url, task.base_commit)  # the clone, once, is not timed
    scratch = work / "bare"
    scratch.mkdir()

    bares, farms = [], []
    for round_ in range(args.rounds):  # alternated, so a change in the machine's load hits both alike
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            passed = list(pool.map(lambda p: bare_pair(base, task.path, scratch, p.features), pairs))
        bares.append((time.perf_counter() - t0) / len(pairs))
        assert all(passed), "the bare loop failed a pair"

        t0 = time.perf_counter()
        recs = api.run(f"bench-scale-{round_}", agent="gold", setting="solo", dataset=str(work / "dataset"),
                       concurrency=args.concurrency)  # fmt: skip
        farms.append((time.perf_counter() - t0) / len(pairs))
        assert len(recs) == len(pairs) and all(r["both_passed"] for r in recs), "the farm failed a pair"
        if args.rounds > 1:
            print(f"round {round_ + 1}: bare {1000 * bares[-1]:.1f} ms, farm {1000 * farms[-1]:.1f} ms per pair, "
                  f"ratio {farms[-1] / bares[-1]:.2f}", flush=True)  # fmt: skip

    t0 = time.perf_counter()
    api.run(f"bench-scale-{args.rounds - 1}", agent="gold", setting="solo", dataset=str(work / "dataset"))
    again = time.perf_counter() - t0
    bare, farm = statistics.median(bares), statistics.median(farms)
    ratio = statistics.median(f / b for f, b in zip(farms, bares, strict=True))
    which = f"median of {args.rounds} rounds" if args.rounds > 1 else "one round"
    print(f"{len(pairs)} pairs, gold solo, {args.concurrency} at a time ({which})")
    print(f"bare-work loop:  {1000 * bare:7.1f} ms per pair")
    print(f"embedded farm:   {1000 * farm:7.1f} ms per pair   ratio to bare: {ratio:.2f}")
    print(f"the same run again (nothing to do): {again:.2f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
