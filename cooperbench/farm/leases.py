"""Worker leases: the tasks a dead worker held go back to the queue within a couple of minutes.

Redis hands an unacknowledged task to another worker only after the broker's visibility
timeout (`visibility_timeout`, hours: above the longest agent run). So each worker (its
consuming process) holds a **lease** in Redis: the key `cooperbench:lease:<worker>` with a
TTL (`lease_ttl`, 60 s) that a thread renews every third of it, and the set
`cooperbench:lease:<worker>:tags` of the delivery tags of every task it received (the
tasks it runs and the ones it holds back); the hash `cooperbench:leases` registers every
worker with the time of its last renewal. Every worker also **reaps**, every
`reap_interval` seconds (10): a registered worker whose lease has expired is dead
(SIGKILL, a lost machine); one reaper claims it (HDEL: exactly one wins), puts each of its
tasks still unacknowledged, handed out while it was alive and held by no live worker, back
at the head of its queue with kombu's own `restore_by_tag` (a transaction on the unacknowledged hash: a
task is put back once, and one acknowledged meanwhile is left alone), and forgets it.

The task put back is the broker's own message (same id, same chord), moved out of the
unacknowledged hash: it is delivered once more and counts once in its pair's chord, and
the broker holds no second copy to hand out when the visibility timeout passes. A worker
that stops cleanly drops its lease (Celery itself requeues what it held). Limit: a worker
cut off from Redis for longer than `lease_ttl` is taken for dead, and its tasks run again
elsewhere while it may still be running them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

import redis
from celery import signals

from .. import settings

log = logging.getLogger(__name__)

REGISTRY = "cooperbench:leases"


def lease_key(worker: str) -> str:
    return f"{REGISTRY[:-1]}:{worker}"  # cooperbench:lease:<worker>


def tags_key(worker: str) -> str:
    return f"{lease_key(worker)}:tags"


class Keeper:
    """One worker's lease (renewed) and its reaper of dead workers' leases, in one thread."""

    def __init__(self, app, name: str):
        self.app = app
        self.worker = f"{name}/{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.ttl = float(settings.get("lease_ttl"))
        self.interval = float(settings.get("reap_interval"))
        self.redis = redis.Redis.from_url(app.conf.broker_url)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cooperbench-lease", daemon=True)

    def start(self) -> Keeper:
        self.renew()
        self._thread.start()
        return self

    def renew(self) -> None:
        with self.redis.pipeline(transaction=False) as p:
            p.set(lease_key(self.worker), "1", px=int(self.ttl * 1000))
            p.hset(REGISTRY, self.worker, time.time())  # when its lease was last renewed
            p.execute()

    def hold(self, delivery_tag: str) -> None:
        """Note a task this worker received (its message is unacknowledged until the task ends)."""
        self.redis.sadd(tags_key(self.worker), delivery_tag)

    def stop(self) -> None:
        """A clean stop: the lease goes (Celery requeues what the worker held itself)."""
        self._stop.set()
        try:
            with self.redis.pipeline(transaction=False) as p:
                p.hdel(REGISTRY, self.worker)
                p.delete(lease_key(self.worker), tags_key(self.worker))
                p.execute()
        except redis.RedisError as exc:
            log.warning("cannot drop the lease of %s: %s", self.worker, exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.renew()
                self.forget_acknowledged()
                self.reap()
            except Exception as exc:  # noqa: BLE001 - a failed round is tried again at the next one
                log.warning("lease round of %s failed: %s", self.worker, exc)

    def _unacked_key(self, name: str = "unacked_key", default: str = "unacked") -> str:
        """The Redis transport's unacknowledged hash (or, by name, its index by time handed out)."""
        return (self.app.conf.broker_transport_options or {}).get(name, default)

    def forget_acknowledged(self) -> None:
        """Drop from this worker's set the tasks it has acknowledged (their messages are gone)."""
        tags = list(self.redis.smembers(tags_key(self.worker)))
        if not tags:
            return
        with self.redis.pipeline(transaction=False) as p:
            for tag in tags:
                p.hexists(self._unacked_key(), tag)
            held = p.execute()
        gone = [tag for tag, still in zip(tags, held, strict=True) if not still]
        if gone:
            self.redis.srem(tags_key(self.worker), *gone)

    @property
    def period(self) -> float:
        """Seconds between two rounds (renewal, then reaping)."""
        return min(self.interval, self.ttl / 3)

    def reap(self) -> list[str]:
        """Put back the unacknowledged tasks of every worker whose lease expired; returns their tags.

        A task is the dead worker's only if the broker handed it out before that worker's last renewal
        plus two rounds (a live worker renews every round), and no live worker holds it: one handed out
        later was put back by the broker's visibility timeout and taken by another worker."""
        restored = []
        index = self._unacked_key("unacked_index_key", "unacked_index")
        registry = {raw.decode(): float(renewed) for raw, renewed in self.redis.hgetall(REGISTRY).items()}
        live = [w for w in registry if w == self.worker or self.redis.exists(lease_key(w))]
        for worker, renewed in registry.items():
            if worker in live or not self.redis.hdel(REGISTRY, worker):
                continue  # alive, or another worker's reaper claimed it
            tags = [t.decode() for t in self.redis.smembers(tags_key(worker))]
            if tags:
                with self.app.connection_for_write() as conn:
                    qos = conn.default_channel.qos
                    for tag in tags:
                        handed_out = self.redis.zscore(index, tag)
                        if handed_out is None or handed_out > renewed + 2 * self.period:
                            continue
                        if any(self.redis.sismember(tags_key(w), tag) for w in live):
                            continue
                        qos.restore_by_tag(tag)
                        restored.append(tag)
            self.redis.delete(tags_key(worker))
            log.warning("worker %s is gone (lease expired): %d task(s) put back in the queue", worker, len(restored))
        return restored


_keepers: dict[int, Keeper] = {}
_lock = threading.Lock()


def _keeper(consumer) -> Keeper:
    with _lock:
        keeper = _keepers.get(id(consumer))
        if keeper is None:
            keeper = _keepers[id(consumer)] = Keeper(consumer.app, consumer.hostname or "worker").start()
        return keeper


@signals.worker_ready.connect(weak=False)
def _on_ready(sender=None, **_):
    try:
        _keeper(sender)
    except redis.RedisError as exc:
        log.warning("cannot take a worker lease: %s", exc)


@signals.task_received.connect(weak=False)
def _on_received(sender=None, request=None, **_):
    tag = getattr(getattr(request, "message", None), "delivery_tag", None)
    if tag is None:
        return
    try:
        _keeper(sender).hold(str(tag))
    except redis.RedisError as exc:
        log.warning("cannot note task %s in the worker's lease: %s", getattr(request, "id", "?"), exc)


@signals.worker_shutdown.connect(weak=False)
def _on_shutdown(sender=None, **_):
    app = getattr(sender, "app", None)
    with _lock:
        mine = [k for k, keeper in _keepers.items() if keeper.app is app]
        stopping = [_keepers.pop(k) for k in mine]
    for keeper in stopping:
        keeper.stop()
