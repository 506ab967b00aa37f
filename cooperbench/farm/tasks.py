"""The farm's two Celery tasks: run one agent of a pair, and evaluate the pair.

They are thin: the work is in `pair/` (`agent_step.run_agent`, `eval_step.evaluate_pair`).
Task names and the `argsrepr` set at submit time say which experiment, pair and agent a
task is, so Flower shows it. The teammates' mailbox lives on the broker's Redis (or
`cooperbench_mailbox_url` if set).
"""

from __future__ import annotations

import time

from .. import settings
from ..data.dataset import Pair
from ..experiment import ExperimentSpec
from ..pair.agent_step import run_agent
from ..pair.eval_step import evaluate_pair
from ..statuses import ErrorKind, MergeStatus
from ..team.mailbox import connect
from . import inflight

AGENT_TASK = "cooperbench.agent"
EVALUATE_TASK = "cooperbench.evaluate"


def mailbox_url(app) -> str:
    return app.conf.get("cooperbench_mailbox_url") or app.conf.broker_url


def _retry_infra(task, failed: bool, team_waits: int = 0, args: tuple | None = None, kwargs: dict | None = None):
    """Typed retries: an infrastructure failure is tried again, with exponential backoff, up to
    the `infra_retries` setting's times; an agent's or a test's failure never is. (`team_waits`
    of the task's retries were re-queues to wait for teammates: they do not count.)"""
    limit = settings.get("infra_retries")
    tries = task.request.retries - team_waits
    if failed and tries < limit:
        base = settings.get("infra_backoff")
        raise task.retry(countdown=base * 2**tries, max_retries=limit + team_waits, args=args, kwargs=kwargs)


def agent_task(
    self, spec: dict, pair: dict, agent_id: str, features: list[int], waiting_since=None, team_waits: int = 0
) -> dict:
    """One agent of a pair. A coop agent whose teammates have not started within the hold is
    re-queued (a retry with a short countdown, keeping its chord) instead of holding its slot."""
    since = waiting_since if waiting_since is not None else time.time()
    args = (spec, pair, agent_id, features)  # given with kwargs on every retry: Celery then merges nothing
    summary = run_agent(
        ExperimentSpec.from_json(spec),
        Pair.from_json(pair),
        agent_id,
        tuple(features),
        mailbox_url(self.app),
        waiting_since=since,
    )
    if summary.get("requeue") is not None:
        raise self.retry(
            args=args,
            kwargs={"waiting_since": since, "team_waits": team_waits + 1},
            countdown=summary["requeue"],
            max_retries=self.request.retries + 1,
        )
    # tried again after a failure, the agent waits for its team anew: a full team-start window
    _retry_infra(self, summary.get("retryable", False), team_waits, args, {"team_waits": team_waits})
    return summary


def evaluation_task(self, spec: dict, pair: dict) -> dict:
    spec, pair = ExperimentSpec.from_json(spec), Pair.from_json(pair)
    client = connect(mailbox_url(self.app))
    try:
        claimed = inflight.current(client, spec.name, pair)
        if claimed is not None and claimed != self.request.id:  # --force replaced this chord: record nothing
            return {"superseded_by": claimed}
        record = evaluate_pair(spec, pair, mailbox_url(self.app))
        # a missing agent patch is retried through the agent's own task, not here
        _retry_infra(
            self,
            record.get("error_kind") == ErrorKind.INFRA and record.get("merge_status") != MergeStatus.MISSING_INPUT,
        )
        inflight.finish(client, spec.name, pair, self.request.id)
        return record
    finally:
        client.close()


def register(app) -> None:
    from . import leases  # noqa: F401 - its signal handlers give every worker a lease and a reaper

    # An agent task stores no result, but its failure is stored: that is what fails the evaluation
    # chained after it (a solo pair's chain) instead of leaving it never sent and `wait` waiting.
    app.task(name=AGENT_TASK, bind=True, store_errors_even_if_ignored=True)(agent_task)
    app.task(name=EVALUATE_TASK, bind=True)(evaluation_task)
