"""The farm's queue depth as Prometheus metrics, for dashboards and autoscalers.

Flower's `/metrics` has per-worker and per-task figures but not the broker's queue lengths, which
is what a fleet scales on. This serves, at `http://HOST:PORT/metrics`:

  cooperbench_queue_length{queue="cooperbench.agents"}   tasks waiting in each Celery queue
  cooperbench_tasks_unacked                               tasks delivered to a worker, not yet done

read from the Redis broker at each scrape (a few LLEN/HLEN calls; never a SCAN).
"""

from __future__ import annotations

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

# kombu's Redis transport keeps one list per queue, plus one per priority step when priorities are used
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
UNACKED = "unacked"  # kombu's hash of delivered, unacknowledged messages


def queue_names() -> list[str]:
    import celeryconfig

    return [q.name for q in celeryconfig.task_queues]


def queue_keys(queue: str) -> list[str]:
    return [queue] + [f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS if step]


class QueueDepth(Collector):
    def __init__(self, broker_url: str, queues: list[str]):
        self.client = redis.Redis.from_url(broker_url, socket_timeout=5)
        self.queues = queues

    def collect(self):
        lengths = GaugeMetricFamily("cooperbench_queue_length", "Tasks waiting in a Celery queue.", labels=["queue"])
        with self.client.pipeline(transaction=False) as pipe:
            for queue in self.queues:
                for key in queue_keys(queue):
                    pipe.llen(key)
            pipe.hlen(UNACKED)
            counts = pipe.execute()
        per_queue = len(PRIORITY_STEPS)
        for i, queue in enumerate(self.queues):
            lengths.add_metric([queue], sum(counts[i * per_queue : (i + 1) * per_queue]))
        yield lengths
        yield GaugeMetricFamily(
            "cooperbench_tasks_unacked", "Tasks delivered to a worker and not yet acknowledged.", value=counts[-1]
        )


def registry(broker_url: str, queues: list[str] | None = None) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(QueueDepth(broker_url, queues or queue_names()))
    return reg


def serve(broker_url: str, port: int, address: str = "0.0.0.0"):
    """Serve the metrics in a background thread; returns (server, thread)."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=address, registry=registry(broker_url))
