"""Shared fixtures: a real Redis, real SQLite and PostgreSQL databases, a real Celery worker, the bundled dataset."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "dataset"
PG_ADMIN = os.environ.get("COOPERBENCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("COOPERBENCH_TEST_REDIS", "redis://127.0.0.1:6379")


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory):
    """Keep caches, logs and the default database of the code under test inside the test's temp dir."""
    base = tmp_path_factory.mktemp("env")
    # sandboxes outside /tmp: inside a sandbox /tmp is its own, and a test suite run there that
    # cleans its old temporary folders must not find the way to the sandbox's working copy
    scratch = Path(tempfile.mkdtemp(prefix="cooperbench-test-sandboxes-", dir="/var/tmp"))
    saved = dict(os.environ)
    os.environ.update(
        {
            "COOPERBENCH_SCRATCH": str(scratch),
            "COOPERBENCH_CACHE": str(base / "cache"),
            "COOPERBENCH_LOGS": str(base / "logs"),
            "COOPERBENCH_DB_URL": f"sqlite:///{base / 'default.db'}",
            "COOPERBENCH_GOLD_WAIT": "15",
        }
    )
    os.environ.pop("COOPERBENCH_BROKER_URL", None)
    yield base
    os.environ.clear()
    os.environ.update(saved)
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url():
    """A Redis database of its own on the machine's server, emptied before use."""
    for db in range(15, 7, -1):
        url = f"{REDIS_BASE}/{db}"
        client = redis.Redis.from_url(url)
        try:
            if client.set("cooperbench-test-lock", "1", nx=True, ex=3600):
                client.flushdb()
                client.set("cooperbench-test-lock", "1", ex=3600)
                yield url
                client.flushdb()
                return
        except redis.ConnectionError:
            pytest.fail(f"no Redis at {REDIS_BASE}; start redis-server or set COOPERBENCH_TEST_REDIS")
    pytest.fail("no free Redis database for the tests")


@contextmanager
def new_postgres_database(prefix: str = "cooperbench_test"):
    """A PostgreSQL database of its own on the machine's server; dropped (with the project's engine for it) after."""
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        from cooperbench.store import db

        eng = db._engines.pop(url, None)
        if eng is not None:
            eng.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh PostgreSQL database, dropped at the end of the session."""
    with new_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def dataset_dir():
    assert DATASET.is_dir(), "the bundled dataset is missing"
    return DATASET


class Worker:
    """A real `celery -A cooperbench worker` process."""

    def __init__(
        self, broker: str, database: str, logfile: Path, concurrency: int = 4, extra_env=None, queues: str | None = None
    ):
        env = {**os.environ, "COOPERBENCH_BROKER_URL": broker, "COOPERBENCH_DB_URL": database, **(extra_env or {})}
        self.log = logfile
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "cooperbench",
                "worker",
                "-c",
                str(concurrency),
                "--loglevel",
                "INFO",
                "-n",
                f"test-{uuid.uuid4().hex[:6]}@%h",
                "--without-mingle",
                "--without-gossip",
                *(["-Q", queues] if queues else []),
            ],
            cwd=ROOT,
            env=env,
            stdout=open(logfile, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while "ready." not in logfile.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("worker did not start:\n" + logfile.read_text()[-3000:])
            time.sleep(0.2)

    def kill(self):
        """SIGKILL the worker and its pool processes, as a crashed machine would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="module")
def farm(redis_url, tmp_path_factory):
    """A broker (real Redis), a results database (SQLite) and a real worker process."""
    base = tmp_path_factory.mktemp("farm")
    database = f"sqlite:///{base / 'farm.db'}"
    worker = Worker(redis_url, database, base / "worker.log")
    yield {"broker": redis_url, "db": database, "logs": str(base / "logs"), "worker": worker}
    worker.stop()


@pytest.fixture
def emulator(monkeypatch):
    """A GCS-protocol server (tests/gcs_emulator.py) that google-cloud-storage in this process talks to."""
    from tests.gcs_emulator import Emulator

    emu = Emulator().start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emu.host)
    yield emu
    emu.stop()


@pytest.fixture
def dataset_copy(dataset_dir, tmp_path):
    """A private copy of the bundled dataset that a test may break."""
    dest = tmp_path / "dataset"
    shutil.copytree(dataset_dir, dest)
    return dest


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 600):
    """Run the installed `cooperbench` command as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "cooperbench.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
        timeout=timeout,
    )


def drop_queued_work(broker_url: str) -> None:
    """Forget every task still queued or unacknowledged on the tests' broker database: a test
    that kills its worker mid-run leaves them there, and the next test's worker would run them."""
    client = redis.Redis.from_url(broker_url)
    try:
        patterns = ("cooperbench.agents*", "cooperbench.evaluations*")  # each queue's priority lists too
        queues = [key for pattern in patterns for key in client.scan_iter(pattern)]
        client.delete(*queues, "unacked", "unacked_index", "unacked_mutex")
    finally:
        client.close()


def sh_git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def upstream(tmp_path):
    """A bare upstream with a base commit, a later commit holding a 'solution', a tag and a side branch."""
    work = tmp_path / "work"
    work.mkdir()
    sh_git(work, "init", "-q", "-b", "main")
    sh_git(work, "config", "user.email", "u@u")
    sh_git(work, "config", "user.name", "u")
    (work / "lib.py").write_text("def f():\n    return 1\n")
    sh_git(work, "add", "-A")
    sh_git(work, "commit", "-qm", "first")
    (work / "lib.py").write_text("def f():\n    return 2\n")
    sh_git(work, "commit", "-qam", "base")
    base = sh_git(work, "rev-parse", "HEAD")
    (work / "solution.py").write_text("SECRET = 'the answer'\n")
    sh_git(work, "add", "-A")
    sh_git(work, "commit", "-qm", "future solution")
    sh_git(work, "tag", "v2")
    sh_git(work, "branch", "side")
    future = sh_git(work, "rev-parse", "HEAD")
    bare = tmp_path / "upstream.git"
    sh_git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare, base, future


@dataclass
class TaskRef:
    """Just what a sandbox backend reads from a task: where its repository is, its base commit, its key."""

    repo_url: str
    base_commit: str
    key: str = "lib_task/task1"


@pytest.fixture
def eval_sandbox(tmp_path, upstream):
    """A local sandbox of `upstream` at its base, as the evaluation makes one (closed afterwards)."""
    from cooperbench.data.repocache import RepoCache
    from cooperbench.sandbox.local import LocalBackend

    bare, base, _ = upstream
    backend = LocalBackend(cache=RepoCache(tmp_path / "cache"), scratch=tmp_path / "sandboxes")
    sandbox = backend.create(TaskRef(str(bare), base), labels={"pair": "lib_task/task1/f1-f2", "agent": "eval"})
    yield sandbox
    sandbox.close()
