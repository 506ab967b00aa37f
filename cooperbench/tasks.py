"""Celery tasks: thin wrappers that run one step of a pair on a worker.

Task names and the `argsrepr` set at submit time say which experiment, pair and agent a
task is, so Flower shows it. The mailbox lives on the broker's Redis.
"""

from __future__ import annotations

from .celery_app import app
from .dataset import Pair
from .experiment import ExperimentSpec
from .pipeline import evaluate_pair, run_agent


def mailbox_url() -> str:
    return app.conf.get("cooperbench_mailbox_url") or app.conf.broker_url


@app.task(name="cooperbench.agent")
def agent_task(spec: dict, pair: dict, agent_id: str, features: list[int]) -> dict:
    return run_agent(ExperimentSpec.from_json(spec), Pair.from_json(pair), agent_id, tuple(features), mailbox_url())


@app.task(name="cooperbench.evaluate")
def evaluate_task(spec: dict, pair: dict) -> dict:
    return evaluate_pair(ExperimentSpec.from_json(spec), Pair.from_json(pair), mailbox_url())
