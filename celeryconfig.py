"""Celery settings for the CooperBench farm; the values that vary come from the farm's settings table.

`celery -A cooperbench worker` and the `cooperbench` CLI both load this module. Broker,
result backend, expiry, visibility timeout and concurrency are settings of
`cooperbench/settings.py` (`cooperbench config` shows them and where they came from).
"""

from kombu import Exchange as _Exchange
from kombu import Queue as _Queue

from cooperbench.settings import get as _setting

broker_url = _setting("broker_url") or "redis://127.0.0.1:6379/0"
result_backend = _setting("result_backend")

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

# A task is acknowledged only once it has finished, so a worker that dies mid-agent
# leaves its task to be delivered again instead of losing it.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1

# Flower needs events to show which experiment / pair / agent each task is.
worker_send_task_events = True
task_send_sent_event = True
task_track_started = True

# Evaluations have a queue of their own, so a finished pair is graded without waiting behind every
# agent task still queued. A worker consumes both unless told otherwise (`celery -A cooperbench
# worker -Q cooperbench.evaluations` for a worker that only grades).
task_default_queue = "cooperbench.agents"
task_queues = tuple(
    _Queue(name, _Exchange(name), routing_key=name) for name in ("cooperbench.agents", "cooperbench.evaluations")
)
task_routes = {"cooperbench.evaluate": {"queue": "cooperbench.evaluations"}}

result_expires = _setting("result_expires")
broker_connection_retry_on_startup = True
broker_transport_options = {
    # Redis redelivers an unacknowledged task after this many seconds; it must exceed
    # the longest agent run, or a still-running agent would be started twice.
    "visibility_timeout": _setting("visibility_timeout"),
    # How often a worker looks for tasks whose worker died (unacknowledged past the timeout).
    "unacked_restore_interval": _setting("restore_interval"),
    "unacked_restore_throttle": _setting("restore_throttle"),
}
worker_concurrency = _setting("concurrency")
# A stopping worker (REMAP_SIGTERM=SIGQUIT makes SIGTERM, e.g. a Spot VM's preemption, a cold
# shutdown) lets running tasks go on this long, then cancels them: unacknowledged (acks_late),
# they go straight back to the queue instead of waiting out the visibility timeout.
worker_soft_shutdown_timeout = _setting("soft_shutdown_timeout")
