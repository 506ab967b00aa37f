"""The broker (Redis, keeping nothing on disk) restarts in the middle of an experiment: the queued
tasks are lost, the worker reconnects, and running the experiment again does exactly what is
missing, so every pair ends once and no finished agent is paid for twice."""

import socket
import subprocess
import time

from cooperbench import api
from cooperbench.store import db

from ..conftest import Worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis(port: int, workdir) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode == 0:
            return proc
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def test_redis_restart_mid_experiment(tmp_path):
    port = _free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    database = f"sqlite:///{tmp_path / 'r.db'}"
    server = _redis(port, tmp_path)
    worker = Worker(broker, database, tmp_path / "worker.log", concurrency=2)
    try:
        kwargs = dict(
            agent="gold", setting="solo", repo="memkv_task", broker=broker, db_url=database, logs=str(tmp_path / "logs")
        )
        api.run("restart", wait=False, **kwargs)
        deadline = time.monotonic() + 60
        while not db.query(database, db.AgentRun, experiment="restart"):
            assert time.monotonic() < deadline, "no agent ran"
            time.sleep(0.1)
        server.kill()  # everything queued in Redis is lost
        server.wait()
        finished = {(r.id, r.finished_at) for r in db.query(database, db.AgentRun, experiment="restart")}
        time.sleep(1)
        server = _redis(port, tmp_path)
        first = api.run("restart", timeout=30, **kwargs)  # waits for what it submits, then gives up on the lost
        assert len(first) == 10
        second = api.run("restart", timeout=300, **kwargs)
    finally:
        worker.stop()
        server.kill()
    assert len(second) == 10 and all(r["status"] == "done" and r["both_passed"] for r in second), second
    rows = db.query(database, db.PairRun, experiment="restart")
    assert len(rows) == 10 and len({r.id for r in rows}) == 10
    runs = db.query(database, db.AgentRun, experiment="restart")
    assert len(runs) == 10 and all(r.status == "Submitted" for r in runs)
    assert finished <= {(r.id, r.finished_at) for r in runs}  # what had finished was not paid for again
    assert (tmp_path / "worker.log").read_text().count("Connected to redis") >= 2  # the worker reconnected
