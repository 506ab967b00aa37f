"""Celery settings for the CooperBench farm; every value can be overridden by environment.

`celery -A cooperbench worker` and the `cooperbench` CLI both load this module.
Broker and result backend come from COOPERBENCH_BROKER_URL (default: the local Redis).
"""

import os

broker_url = os.environ.get("COOPERBENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
result_backend = os.environ.get("COOPERBENCH_RESULT_BACKEND", broker_url)

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

result_expires = int(os.environ.get("COOPERBENCH_RESULT_EXPIRES", 7 * 24 * 3600))
broker_connection_retry_on_startup = True
broker_transport_options = {
    # Redis redelivers an unacknowledged task after this many seconds; it must exceed
    # the longest agent run, or a still-running agent would be started twice.
    "visibility_timeout": int(os.environ.get("COOPERBENCH_VISIBILITY_TIMEOUT", 6 * 3600)),
    # How often a worker looks for tasks whose worker died (unacknowledged past the timeout).
    "unacked_restore_interval": int(os.environ.get("COOPERBENCH_RESTORE_INTERVAL", 10)),
    "unacked_restore_throttle": int(os.environ.get("COOPERBENCH_RESTORE_THROTTLE", 10)),
}
worker_concurrency = int(os.environ["COOPERBENCH_CONCURRENCY"]) if os.environ.get("COOPERBENCH_CONCURRENCY") else None
