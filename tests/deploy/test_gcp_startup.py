"""The GCP startup script on a fresh Debian "VM" (a container of the local base image, host network):
configured from a local metadata server, it installs the project, joins the broker and runs a pair;
a SIGTERM (a Spot preemption) hands its running task straight back to the queue."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from cooperbench.statuses import PairStatus

from ..conftest import DATASET, ROOT, Worker, run_cli
from .containers import base_image, needs_podman, podman
from .metadata_server import MetadataServer

pytestmark = [needs_podman, pytest.mark.timeout(2400)]
STARTUP = ROOT / "deploy" / "gcp" / "startup.sh"
VM_CACHE = Path("/var/tmp/cooperbench-test-vm-cache")  # pip and uv caches kept across runs


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project as a wheel, built from a copy of its sources (nothing written into the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "celeryconfig.py"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "cooperbench", src / "cooperbench", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return next(out.glob("*.whl"))


def first_pair(repo: str) -> dict:
    listed = run_cli("dataset", "list", "--json", "-r", repo, "--dataset", str(DATASET))
    return json.loads(listed.stdout)[0]


def test_startup_script_makes_a_worker_that_runs_a_pair_and_hands_back_its_task_on_sigterm(
    redis_url, postgres_url, wheel, tmp_path, emulator
):
    VM_CACHE.mkdir(parents=True, exist_ok=True)
    store = f"gs://{emulator.bucket}/vm-{uuid.uuid4().hex[:6]}"  # the fleet's bucket: submitter and VMs share it
    attributes = {
        "cooperbench-broker-url": redis_url,
        "cooperbench-db-url": postgres_url,
        "cooperbench-source": f"/wheels/{wheel.name}",
        "cooperbench-concurrency": "1",  # one slot: a coop pair's second agent waits in the queue
        "cooperbench-dataset-dir": str(DATASET),
        "cooperbench-logs-dir": store,
        "cooperbench-soft-shutdown": "3",
        "cooperbench-env": f"COOPERBENCH_GOLD_WAIT=5\nSTORAGE_EMULATOR_HOST={emulator.host}",
    }
    name = f"cooperbench-test-vm-{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url(redis_url)
    with MetadataServer(attributes) as metadata:
        started = podman(
            # a VM's root has every capability (bwrap needs them); host network: the test's Redis and PostgreSQL
            "run", "-d", "--name", name, "--network", "host", "--privileged",
            "-e", f"GCE_METADATA_HOST={metadata.host}",
            "-v", f"{STARTUP}:/usr/local/sbin/cooperbench-startup:ro",
            "-v", f"{wheel.parent}:/wheels:ro",
            "-v", f"{DATASET}:{DATASET}:ro",
            "-v", f"{VM_CACHE}:/root/.cache",
            base_image(), "bash", "/usr/local/sbin/cooperbench-startup",
        )  # fmt: skip
        assert started.returncode == 0, started.stderr

        def logs() -> str:
            out = podman("logs", "--tail", "80", name, check=False)
            return (out.stdout + out.stderr)[-6000:]

        try:
            # 1. it joins the broker
            from celery import Celery

            control = Celery(broker=redis_url).control
            deadline = time.monotonic() + 900
            while not control.ping(timeout=2):
                running = podman("inspect", "-f", "{{.State.Running}}", name, check=False).stdout.strip()
                if running != "true" or time.monotonic() > deadline:
                    pytest.fail(f"the VM's worker did not join the broker (running={running})\n{logs()}")
                time.sleep(3)
            assert metadata.asked and all(flavored for _, flavored in metadata.asked)
            assert ("cooperbench-broker-url", True) in metadata.asked

            # 2. and runs a pair (solo: one agent, the worker's one slot)
            pair = first_pair("textkit_task")
            features = ",".join(map(str, pair["features"]))
            solo = f"vm-solo-{uuid.uuid4().hex[:6]}"
            done = run_cli(
                "submit", "-n", solo, "--setting", "solo", "-a", "gold", "-r", pair["repo"],
                "-t", str(pair["task_id"]), "-f", features, "--wait", "--json",
                "--broker", redis_url, "--db", postgres_url, "--dataset", str(DATASET), "--logs", store,
                timeout=600,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-3000:] + logs()
            recs = json.loads(run_cli("status", "-n", solo, "--db", postgres_url, "--json").stdout)
            assert [(r["status"], r["both_passed"]) for r in recs] == [(PairStatus.DONE, True)], (
                [(r["error_kind"], r["error"]) for r in recs],
                logs(),
            )

            # 3. a coop pair: its first agent runs (waiting for its teammate), the second is queued
            coop = f"vm-coop-{uuid.uuid4().hex[:6]}"
            queued = run_cli(
                "submit", "-n", coop, "-a", "gold", "-r", pair["repo"], "-t", str(pair["task_id"]),
                "-f", features, "--broker", redis_url, "--db", postgres_url, "--dataset", str(DATASET),
                "--logs", store,
            )  # fmt: skip
            assert queued.returncode == 0, queued.stderr
            deadline = time.monotonic() + 120
            while not (client.hlen("unacked") == 1 and client.llen("cooperbench.agents") == 1):
                assert time.monotonic() < deadline, (client.hlen("unacked"), client.llen("cooperbench.agents"))
                time.sleep(0.5)
            time.sleep(3)  # the agent is in its run, waiting for its teammate

            # 4. preemption: SIGTERM; the running task goes back to the queue at once
            podman("kill", "--signal", "TERM", name)
            exited = podman("wait", name, timeout=120)
            assert exited.returncode == 0
            assert client.hlen("unacked") == 0, logs()
            assert client.llen("cooperbench.agents") == 2, logs()
            assert "Cold shutdown" in logs() or "cold shutdown" in logs().lower(), logs()
        finally:
            vm_logs = logs()
            podman("rm", "-f", name, check=False)

    # 5. another worker (here: on this host) picks both agents up and the pair finishes
    worker = Worker(redis_url, postgres_url, tmp_path / "worker.log", concurrency=2)
    try:
        deadline = time.monotonic() + 600
        while True:
            recs = json.loads(run_cli("status", "-n", coop, "--db", postgres_url, "--json").stdout)
            if recs and recs[0]["status"] in (PairStatus.DONE, PairStatus.ERROR):
                break
            assert time.monotonic() < deadline, (recs, (tmp_path / "worker.log").read_text()[-3000:])
            time.sleep(2)
        assert [(r["status"], r["both_passed"]) for r in recs] == [(PairStatus.DONE, True)], (recs, vm_logs[-2000:])
    finally:
        worker.stop()
