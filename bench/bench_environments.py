"""Task environments: what preparing a published task costs, and how much faster its evaluations get.

    python bench/bench_environments.py [--repo pallets_click_task] [--task 2068] [--features 4] [--backend docker]

On a real published task (`../shared/published`, upstream from its bundle or shallow mirror;
click, go-chi task 26 or react-hook-form task 85), in one run:
1. preparing its environment from scratch (time, disk; the toolchains the farm provides are
   installed first and timed apart);
2. per feature, the published runner run the published way: with network, in a fresh clone,
   reinstalling into fresh caches at every run (what a sandbox without a prepared environment
   does), and with network but warm caches kept between runs (a host that keeps `~/.cache`),
   each with the farm's toolchains on the PATH;
3. per feature, the farm's evaluation step on the prepared environment: the same runner, in a
   local sandbox, offline, on a private copy of the caches.
It prints each median and the ratios against (3). Needs the network to the package index.
With `--backend docker` (a Docker-API engine, COOPERBENCH_REGISTRY_MIRROR for a machine without
Docker Hub): the task image built, its environment prepared, then the image's runner.sh in a
fresh container with network against the farm's evaluation in the environment image, offline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT.parent / "shared" / "published"
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default="pallets_click_task")
    parser.add_argument("--task", type=int, default=2068)
    parser.add_argument("--features", type=int, default=4, help="how many features to time")
    parser.add_argument("--backend", choices=("local", "docker"), default="local")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cb-bench-env-"))
    gitconfig = subprocess.run(
        ["bash", str(PUBLISHED / "use-upstreams.sh"), str(work / "upstreams.gitconfig")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    os.environ.update(GIT_CONFIG_GLOBAL=gitconfig, COOPERBENCH_CACHE=str(work / "cache"))
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]  # the farm's uv

    from cooperbench.data.dataset import Dataset
    from cooperbench.data.repocache import RepoCache
    from cooperbench.environments import prepared
    from cooperbench.grading.merge_and_test import run_feature_tests
    from cooperbench.sandbox import get_backend

    dataset = PUBLISHED / "dataset"
    task = Dataset(dataset).task(args.repo, args.task)
    numbers = sorted(task.features)[: args.features]
    print(f"task {task.key}, features {numbers}")

    if args.backend == "docker":
        return docker_bench(task, numbers)

    needs = prepared.needs_of(task)
    t0 = time.monotonic()
    provided = prepared.provide_toolchains(task, needs)
    if provided:
        print(f"toolchains: {', '.join(p.describe() for p in provided)} in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    state = prepared.prepare(task, "local", say=lambda _: None)
    print(f"prepare from scratch: {time.monotonic() - t0:.1f} s, {state.state}, {state.size_bytes / 2**20:.1f} MiB")

    base = RepoCache().base(task.repo_url, task.base_commit)
    runner = task.path / "run_tests.sh"

    def variables(cache: Path) -> dict[str, str]:
        """The runner's environment the published way: network, the toolchains, caches in `cache`."""
        env = prepared.environment(task, cache, needs, preparing=True, provided=provided)
        places = {"sandbox": str(cache / "own"), **{name: str(cache / name) for name in env.caches}}
        found = {k: v.format(**places) for k, v in env.variables.items()}
        found["PATH"] = os.pathsep.join([*env.path, os.environ["PATH"]])
        return found

    def published_way(n: int, cache: Path) -> float:
        clone = work / f"clone-{n}"
        shutil.rmtree(clone, ignore_errors=True)
        subprocess.run(["git", "clone", "-q", str(base), str(clone / "repo")], check=True)
        feature = task.feature(n)
        (clone / "t.patch").write_text(feature.tests_patch)
        (clone / "f.patch").write_text(feature.gold_patch)
        env = {**os.environ, **variables(cache)}
        start = time.monotonic()
        proc = subprocess.run(
            ["bash", str(runner), str(clone / "repo"), str(clone / "t.patch"), str(clone / "f.patch")],
            env=env,
            capture_output=True,
            text=True,
        )
        took = time.monotonic() - start
        assert proc.returncode == 0, proc.stdout[-2000:]
        shutil.rmtree(clone, ignore_errors=True)
        return took

    cold = []
    for n in numbers:
        cache = work / f"cold-cache-{n}"
        cold.append(published_way(n, cache))
        shutil.rmtree(cache, ignore_errors=True)
    warm_cache = work / "warm-cache"
    published_way(numbers[0], warm_cache)  # fill it once
    warm = [published_way(n, warm_cache) for n in numbers]

    env = prepared.ensure(task, "local")
    backend = get_backend("local", hide=[dataset])
    farm = []
    for n in numbers:
        sandbox = backend.create(task, labels={"agent": "bench"}, environment=env)
        feature = task.feature(n)
        start = time.monotonic()
        outcome = run_feature_tests(sandbox, task, feature, extra_patch=feature.gold_patch)
        farm.append(time.monotonic() - start)
        sandbox.close()
        assert outcome.passed, outcome.output[-2000:]

    def show(label: str, values: list[float]) -> float:
        median = statistics.median(values)
        print(f"{label:64} {median:6.2f} s median  ({', '.join(f'{v:.2f}' for v in values)})")
        return median

    c = show("published way: network, fresh caches at every run", cold)
    w = show("published way: network, caches kept between runs", warm)
    f = show("farm: prepared environment, offline, private copy of the caches", farm)
    print(f"ratio fresh-cache / prepared: {c / f:.2f}x   warm-cache / prepared: {w / f:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


def docker_bench(task, numbers: list[int]) -> None:
    """The same on the docker backend: the image's runner.sh in a fresh container of the task's
    image, with network (the published way: `docker run -v patches:/patches <image> runner.sh`),
    against the farm's evaluation in a container of the prepared environment image, offline."""
    from cooperbench.environments import prepared
    from cooperbench.grading.merge_and_test import run_feature_tests
    from cooperbench.sandbox import get_backend
    from cooperbench.sandbox.dockerfile import BUILD_DIR, CA_VARIABLES, ca_bundle
    from cooperbench.sandbox.images import FILES_DIR, runner_command, tar_files

    backend = get_backend("docker")
    t0 = time.monotonic()
    image = backend.image_for(task)
    print(f"task image built and sanitized: {time.monotonic() - t0:.1f} s ({image})")
    t0 = time.monotonic()
    state = prepared.prepare(task, "docker", say=lambda _: None)
    took = time.monotonic() - t0
    added = (state.size_bytes or 0) - backend.image_size(image)
    print(f"prepare from scratch: {took:.1f} s, {state.state}, the environment image adds {added / 2**20:.1f} MiB")
    ca = ca_bundle()

    def published_way(n: int) -> float:
        feature = task.feature(n)
        files = {
            f"{FILES_DIR}/t.patch": feature.tests_patch.encode(),
            f"{FILES_DIR}/f.patch": feature.gold_patch.encode(),
        }
        if ca:  # this lab reaches the package index through a TLS-inspecting proxy
            files[f"{BUILD_DIR}/ca.pem"] = ca
        container = backend.client.containers.create(
            image,
            entrypoint=["bash", "-c"],
            command=[runner_command(["t.patch", "f.patch"])],
            environment={name: f"{BUILD_DIR}/ca.pem" for name in CA_VARIABLES} if ca else None,
        )
        try:
            container.put_archive("/", tar_files(files))
            start = time.monotonic()
            container.start()
            code = container.wait(timeout=600)["StatusCode"]
            took = time.monotonic() - start
            assert code == 0, container.logs().decode()[-2000:]
        finally:
            container.remove(force=True)
        return took

    published = [published_way(n) for n in numbers]
    env = prepared.ensure(task, "docker")
    farm = []
    for n in numbers:
        with backend.create(task, labels={"agent": "bench"}, environment=env) as sandbox:
            feature = task.feature(n)
            start = time.monotonic()
            outcome = run_feature_tests(sandbox, task, feature, extra_patch=feature.gold_patch)
            farm.append(time.monotonic() - start)
        assert outcome.passed, outcome.output[-2000:]
    p = statistics.median(published)
    f = statistics.median(farm)
    print(f"published way: fresh container, network, runner.sh reinstalling   {p:6.2f} s median  {published}")
    print(f"farm: prepared environment image, offline                         {f:6.2f} s median  {farm}")
    print(f"ratio published / prepared: {p / f:.2f}x")


if __name__ == "__main__":
    main()
