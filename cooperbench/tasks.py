"""The farm's two Celery tasks: run one agent of a pair, and evaluate the pair.

They are thin: the work is in `pipeline`. Task names and the `argsrepr` set at submit
time say which experiment, pair and agent a task is, so Flower shows it. The teammates'
mailbox lives on the broker's Redis (or `cooperbench_mailbox_url` if set).
"""

from __future__ import annotations

from .dataset import Pair
from .experiment import ExperimentSpec
from .pipeline import evaluate_pair, run_agent

AGENT_TASK = "cooperbench.agent"
EVALUATE_TASK = "cooperbench.evaluate"


def mailbox_url(app) -> str:
    return app.conf.get("cooperbench_mailbox_url") or app.conf.broker_url


def agent_task(self, spec: dict, pair: dict, agent_id: str, features: list[int]) -> dict:
    return run_agent(ExperimentSpec.from_json(spec), Pair.from_json(pair), agent_id, tuple(features),
                     mailbox_url(self.app))


def evaluate_task(self, spec: dict, pair: dict) -> dict:
    return evaluate_pair(ExperimentSpec.from_json(spec), Pair.from_json(pair), mailbox_url(self.app))


def register(app) -> None:
    app.task(name=AGENT_TASK, bind=True)(agent_task)
    app.task(name=EVALUATE_TASK, bind=True)(evaluate_task)
