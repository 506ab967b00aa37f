"""Farm time per pair against the bare work, measured in one run, on a synthetic scale task.

    python bench/bench_scale.py [--features 32] [--concurrency 2] [--rounds 1] [--isolation]   # 32: 496 pairs

The farm: `api.run` with no broker (the embedded farm: a private Redis, an in-process worker
with `--concurrency` threads), gold agent, solo setting. The baseline is the same work done by a
plain loop, `--concurrency` pairs at a time: copy the base working copy, apply both gold patches
under bubblewrap, capture the diff, copy the base again, apply the diff, run each feature's test
script under bubblewrap. The ratio is the farm's own cost per pair. With `--rounds N` the loops are
alternated N times (each farm round a new experiment) and the medians printed: on a shared or
noisy machine one round's ratio moves by a third with the load.

`--isolation` splits the farm's cost in two, in the same run: the bare loop again with the farm's
isolation added by hand (each copy handed to a user that is nobody on the host; the commands that
touch the agent's tree, the capture included, under the farm's own bwrap options, `setpriv` and
`prlimit`; the disk-use walk; the second feature in its own copy), and the farm with its commands
unconfined (`no_bwrap`).
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


def isolated_pair(base: Path, task: Path, scratch: Path, features: tuple[int, int], hidden: list[Path]) -> bool:
    """The bare loop with the farm's isolation added by hand (not the farm's code): each copy handed to
    a user that is nobody on the host, every command that touches what the agent wrote confined as
    the farm confines it (its bwrap options, `setpriv`, `prlimit`, the disk-use walk), the capture
    included, and the second feature tested in a copy of the merged tree taken before any test ran."""
    from cooperbench.sandbox.confine import Limits, Mounts, confining, sandbox_uid
    from cooperbench.sandbox.local import _disk_use  # the farm's own walk, over the same folders

    limits = Limits.from_settings()
    work = scratch / uuid.uuid4().hex[:8]
    work.mkdir()

    def sandbox(name: str, source: Path) -> tuple[Path, list[str], int]:
        root = work / name
        root.mkdir()
        for d in ("files", "home", "tmp"):
            (root / d).mkdir()
        _sh(["cp", "-a", "--reflink=auto", str(source), str(root / "repo")], work)
        uid = sandbox_uid(None)
        mounts = Mounts(writable=[root], readonly=[root / "files"], tmp=root / "tmp", hidden=hidden)
        options, drop = confining(mounts, uid, limits)
        return root, [*options, "--chdir", str(root / "repo"), *drop], uid

    def confined(root: Path, prefix: list[str], command: str) -> int:
        code = subprocess.run([*prefix, "bash", "-c", command], cwd="/", capture_output=True).returncode
        _disk_use([root / "repo", root / "home", root / "tmp"])
        return code

    def hand_over(root: Path, uid: int) -> None:  # before its first confined command, as the farm
        if os.geteuid() == 0:
            _sh(["chown", "-hR", f"{uid}:{uid}", str(root)], work)

    def test(root: Path, prefix: list[str], n: int) -> bool:
        shutil.copy(task / "run_tests.sh", root / "files" / "run_tests.sh")
        shutil.copy(task / f"feature{n}" / "tests.patch", root / "files" / "tests.patch")
        command = f"bash {root / 'files' / 'run_tests.sh'} {root / 'repo'} {root / 'files' / 'tests.patch'}"
        return confined(root, prefix, command) == 0

    try:
        agent, prefix, uid = sandbox("agent", base)
        for n in features:  # the harness folder holds what commands read: they see nothing else
            shutil.copy(task / f"feature{n}" / "feature.patch", agent / "files" / f"feature{n}.patch")
        patches = " ".join(str(agent / "files" / f"feature{n}.patch") for n in features)
        hand_over(agent, uid)
        out = agent / "tmp" / "patch"
        applied = confined(agent, prefix, f"for p in {patches}; do git apply $p; done")
        captured = confined(agent, prefix, f"git add -A && git diff --cached --binary > {out}")
        if applied or captured:
            return False
        merged, prefix, uid = sandbox("merged", base)
        repo = merged / "repo"
        _sh(["git", "apply", str(out)], repo)
        _sh(["git", "add", "-A"], repo)
        _sh(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "merged"], repo)
        other, other_prefix, other_uid = sandbox("other", repo)  # a copy before any test ran
        hand_over(merged, uid)
        ok = test(merged, prefix, features[0])
        hand_over(other, other_uid)
        return test(other, other_prefix, features[1]) and ok
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _timed(pairs, concurrency: int, one) -> float:
    """Seconds per pair of doing `one(pair)` for every pair, `concurrency` at a time."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        passed = list(pool.map(one, pairs))
    assert all(passed), "a bare loop failed a pair"
    return (time.perf_counter() - t0) / len(pairs)


def _farm(work: Path, pairs, concurrency: int, name: str, open_: bool = False) -> float:
    """Seconds per pair of a gold solo run of every pair through the embedded farm (`open_`: with
    `no_bwrap` set, commands unconfined)."""
    from cooperbench import api

    if open_:
        os.environ["COOPERBENCH_NO_BWRAP"] = "1"
    try:
        t0 = time.perf_counter()
        recs = api.run(name, agent="gold", setting="solo", dataset=str(work / "dataset"), concurrency=concurrency)
        took = (time.perf_counter() - t0) / len(pairs)
    finally:
        os.environ.pop("COOPERBENCH_NO_BWRAP", None)
    assert len(recs) == len(pairs) and all(r["both_passed"] for r in recs), "the farm failed a pair"
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="bare loop and farm alternated; medians printed")
    parser.add_argument("--isolation", action="store_true",
                        help="also the bare loop with the farm's isolation, and the farm unconfined")  # fmt: skip
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

    hidden = [Path(os.environ["COOPERBENCH_CACHE"]).resolve(), scratch.resolve()]
    loops = {  # name -> one round's time per pair
        "bare-work loop": lambda _: _timed(
            pairs, args.concurrency, lambda p: bare_pair(base, task.path, scratch, p.features)
        ),
        "embedded farm": lambda r: _farm(work, pairs, args.concurrency, f"bench-scale-{r}"),
    }
    if args.isolation:
        loops["bare loop, farm's isolation"] = lambda _: _timed(
            pairs, args.concurrency, lambda p: isolated_pair(base, task.path, scratch, p.features, hidden)
        )
        loops["farm, unconfined"] = lambda r: _farm(work, pairs, args.concurrency, f"bench-scale-open-{r}", open_=True)
    times: dict[str, list[float]] = {name: [] for name in loops}
    for round_ in range(args.rounds):  # alternated, so a change in the machine's load hits every loop alike
        for name, loop in loops.items():
            times[name].append(loop(round_))
        if args.rounds > 1:
            print(f"round {round_ + 1}: " + ", ".join(f"{n} {1000 * t[-1]:.1f}" for n, t in times.items())
                  + " ms per pair", flush=True)  # fmt: skip

    t0 = time.perf_counter()
    api.run(f"bench-scale-{args.rounds - 1}", agent="gold", setting="solo", dataset=str(work / "dataset"))
    again = time.perf_counter() - t0
    which = f"median of {args.rounds} rounds" if args.rounds > 1 else "one round"
    print(f"{len(pairs)} pairs, gold solo, {args.concurrency} at a time ({which})")
    bares = times["bare-work loop"]
    for name, runs in times.items():  # each ratio: the median of the rounds' ratios to that round's bare loop
        ratio = statistics.median(t / b for t, b in zip(runs, bares, strict=True))
        print(f"{name + ':':30s}{1000 * statistics.median(runs):7.1f} ms per pair   ratio to bare: {ratio:.2f}")
    if args.isolation:
        iso = times["bare loop, farm's isolation"]
        ratio = statistics.median(f / b for f, b in zip(times["embedded farm"], iso, strict=True))
        print(f"embedded farm against the bare loop with the farm's isolation: {ratio:.2f}")
    print(f"the same run again (nothing to do): {again:.2f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
