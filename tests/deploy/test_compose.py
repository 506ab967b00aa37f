"""The compose deployment, brought up on podman: Redis, PostgreSQL, Flower and two workers built
from deploy/compose/, a gold experiment submitted from outside through the published ports, every
pair's result found in PostgreSQL and in Flower's authenticated API (which refuses a stranger)."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
import uuid

import pytest
import redis
import requests
from sqlalchemy import create_engine, text

from cooperbench.statuses import MergeStatus, PairStatus

from ..conftest import DATASET, ROOT, run_cli
from .containers import base_image, needs_podman, podman_env

pytestmark = [needs_podman, pytest.mark.timeout(2400)]
COMPOSE_FILE = ROOT / "deploy" / "compose" / "compose.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compose_command() -> list[str]:
    if shutil.which("podman-compose"):
        return ["podman-compose"]
    pytest.fail("podman-compose is not installed (apt-get install podman-compose; .ci/run does)")


def wait_for(what: str, check, timeout: float, logs=lambda: ""):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # a service still starting refuses connections
            last = exc
        time.sleep(1)
    pytest.fail(f"{what} not ready after {timeout:g} s ({last!r})\n{logs()}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compose")
    passwords = {k: secrets.token_hex(8) for k in ("redis", "postgres", "flower")}
    env_file = tmp / "farm.env"
    env_file.write_text(
        f"REDIS_PASSWORD={passwords['redis']}\nPOSTGRES_PASSWORD={passwords['postgres']}\n"
        f"FLOWER_BASIC_AUTH=admin:{passwords['flower']}\nWORKER_CONCURRENCY=2\nCOOPERBENCH_GOLD_WAIT=15\n"
    )
    logs_dir = tmp / "logs"  # the artifact store: this host's folder, the workers' too (same path)
    logs_dir.mkdir()
    ports = {k: free_port() for k in ("REDIS_PORT", "POSTGRES_PORT", "FLOWER_PORT", "EXPORTER_PORT")}
    env = {
        **podman_env(),
        **{k: str(v) for k, v in ports.items()},
        "BASE_IMAGE": base_image(),
        "FARM_ENV": str(env_file),
        "DATASET_DIR": str(DATASET),
        "LOGS_DIR": str(logs_dir),
        "WORKERS": "2",
    }
    project = f"cbtest{uuid.uuid4().hex[:6]}"
    compose = [*compose_command(), "-p", project, "-f", str(COMPOSE_FILE)]

    def run(*args, timeout=1800):
        return subprocess.run([*compose, *args], env=env, capture_output=True, text=True, timeout=timeout)

    def logs() -> str:
        out = subprocess.run(
            ["podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={project}", "--format", "{{.Names}}"],
            env=env, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        return "\n".join(
            f"--- {name}\n"
            + subprocess.run(
                ["podman", "logs", "--tail", "40", name], env=env, capture_output=True, text=True
            ).stdout  # fmt: skip
            for name in out
        )

    built = run("build")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    up = run("up", "-d")
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        info = {
            "broker": f"redis://:{passwords['redis']}@127.0.0.1:{ports['REDIS_PORT']}/0",
            "db": f"postgresql+psycopg://cooperbench:{passwords['postgres']}@127.0.0.1:{ports['POSTGRES_PORT']}/cooperbench",
            "flower": f"http://127.0.0.1:{ports['FLOWER_PORT']}",
            "flower_auth": ("admin", passwords["flower"]),
            "exporter": f"http://127.0.0.1:{ports['EXPORTER_PORT']}/metrics",
            "logs": logs,
            "store": str(logs_dir),
        }
        yield info
    finally:
        run("down", "-v", timeout=300)


def test_a_gold_experiment_submitted_from_outside_lands_in_postgres_and_flower(deployment):
    d = deployment
    wait_for("redis", lambda: redis.Redis.from_url(d["broker"]).ping(), 120, d["logs"])
    engine = create_engine(d["db"])

    def pg_up():
        with engine.connect() as conn:
            return conn.execute(text("select 1")).scalar() == 1

    wait_for("postgres", pg_up, 120, d["logs"])
    wait_for("flower", lambda: requests.get(d["flower"] + "/healthcheck", timeout=5).ok, 120, d["logs"])

    from celery import Celery

    control = Celery(broker=d["broker"]).control
    wait_for("two workers", lambda: len(control.ping(timeout=2)) == 2, 180, d["logs"])

    # Flower is never open: no credentials, wrong credentials: 401
    assert requests.get(d["flower"] + "/api/workers", timeout=10).status_code == 401
    assert requests.get(d["flower"] + "/api/workers", auth=("admin", "wrong"), timeout=10).status_code == 401
    workers = requests.get(d["flower"] + "/api/workers", auth=d["flower_auth"], timeout=30)
    assert workers.status_code == 200

    name = f"compose-{uuid.uuid4().hex[:6]}"
    submitted = run_cli(
        "submit", "-n", name, "-a", "gold", "-s", "lite", "--wait", "--json",
        "--broker", d["broker"], "--db", d["db"], "--dataset", str(DATASET), "--logs", d["store"],
        timeout=900,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr[-3000:] + d["logs"]()

    # PostgreSQL: every pair done and passing (gold patches), read straight from the tables too
    status = run_cli("status", "-n", name, "--db", d["db"], "--json")
    recs = json.loads(status.stdout)
    assert len(recs) == 6  # subsets/lite.json: two pairs of each of the three repositories
    # every pair done, both gold patches recorded and applied; a clean merge passes both features
    # (a conflicting pair's union merge may not: the bundled dataset has both kinds)
    summary = [(r["features"], r["status"], r["merge_status"], r["error_kind"], (r["error"] or "")[:300]) for r in recs]
    assert all(r["status"] == PairStatus.DONE and r["error_kind"] is None for r in recs), summary
    assert all(r["patch_status"] == {"agent1": "applied", "agent2": "applied"} for r in recs), summary
    assert all(r["both_passed"] for r in recs if r["merge_status"] == MergeStatus.CLEAN), summary
    assert any(r["both_passed"] for r in recs), summary
    with engine.connect() as conn:
        rows = conn.execute(text("select count(*) from pairrun where experiment = :n"), {"n": name}).scalar()
    assert rows == len(recs)

    # Flower's API: every agent task and every pair's evaluation, succeeded
    tasks = requests.get(d["flower"] + "/api/tasks", auth=d["flower_auth"], timeout=30).json()

    def shown(t) -> str:  # what Flower shows of a task: its arguments and its result
        return f"{t.get('args')} {t.get('kwargs')} {t.get('result')}"

    mine = [t for t in tasks.values() if name in shown(t) and t["state"] == "SUCCESS"]
    assert sum(t["name"] == "cooperbench.agent" for t in mine) == 2 * len(recs), mine
    for r in recs:
        pair = f"'repo': '{r['repo']}', 'task_id': {r['task_id']}, 'features': {r['features']}"
        evaluations = [t for t in mine if t["name"] == "cooperbench.evaluate" and pair in shown(t)]
        assert len(evaluations) == 1, (pair, mine)

    # the queue-depth exporter: the queues are known and empty now
    metrics = requests.get(d["exporter"], timeout=10).text
    assert 'cooperbench_queue_length{queue="cooperbench.agents"} 0.0' in metrics
    assert "cooperbench_tasks_unacked 0.0" in metrics
    # Flower's own Prometheus metrics (open, documented as such) count the tasks it saw
    assert "flower_events_total" in requests.get(d["flower"] + "/metrics", timeout=10).text
    engine.dispose()
