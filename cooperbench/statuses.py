"""The farm's vocabulary: every status and error kind a row or record can hold, in one place.

They are `StrEnum`s, so each member *is* its stored string: rows written by earlier versions
read back unchanged, JSON outputs are the same, and comparing a member with a plain string
from the database works. Agents from other packages may report statuses of their own; the
harness only relies on the ones here.
"""

from __future__ import annotations

from enum import StrEnum


class AgentStatus(StrEnum):
    """How one agent run ended (`AgentRun.status`)."""

    SUBMITTED = "Submitted"  # the agent said it was done
    LIMITS_EXCEEDED = "LimitsExceeded"  # a step, cost or time limit ended it (its own outcome)
    ERROR = "Error"  # the agent crashed or was misconfigured: its own failure, scored
    INFRA_ERROR = "InfraError"  # the farm failed it (sandbox, broker, model API down): retried, never scored
    SKIPPED = "Skipped"  # never started: the experiment's cost cap or time limit was spent


# Agent runs that a later run of the experiment does again.
NOT_FINAL = frozenset({AgentStatus.INFRA_ERROR, AgentStatus.SKIPPED})


class ErrorKind(StrEnum):
    """Whose failure an error is (`PairRun.error_kind`)."""

    INFRA = "infra"  # the farm's: never scored, retried
    AGENT = "agent"  # the agents': scored as a failure
    INPUT = "input"  # the dataset's or the user's (a refused patch, a broken task)
    BUDGET = "budget"  # not run: the cost cap or the time limit was reached
    EVALUATION = "evaluation"  # not graded: a test runner failed before running any test (never scored)


# Error kinds that are never scored: the pair counts neither as passed nor as failed.
UNSCORED = frozenset({ErrorKind.INFRA, ErrorKind.EVALUATION})


class PairStatus(StrEnum):
    """Where a pair stands (`PairRun.status`)."""

    QUEUED = "queued"
    DONE = "done"
    ERROR = "error"  # an infrastructure error: a later run does it again
    SKIPPED = "skipped"  # not started (cost cap, time limit): a later run does it

    @classmethod
    def after(cls, error_kind: str | None) -> PairStatus:
        """A finished evaluation's pair status, by the kind of its error (if any)."""
        return {ErrorKind.INFRA: cls.ERROR, ErrorKind.EVALUATION: cls.ERROR, ErrorKind.BUDGET: cls.SKIPPED}.get(
            error_kind, cls.DONE
        )


class EnvironmentState(StrEnum):
    """Where a task's prepared environment stands on a machine (`cooperbench env list`)."""

    READY = "ready"
    FAILED = "failed"  # cannot be prepared here: its pairs are infrastructure errors naming the cause
    NOTHING = "nothing to prepare"  # its runner installs nothing


class MergeStatus(StrEnum):
    """What merging the agents' patches gave (`PairRun.merge_status`; also `dataset conflicts`)."""

    CLEAN = "clean"
    CONFLICTS = "conflicts"  # the naive merge conflicted (the union merge may have rescued it)
    MISSING_INPUT = "missing_input"  # an agent's patch is missing (its run failed or was skipped)
    ERROR = "error"  # a patch did not apply, or the evaluation itself failed


class MergeStrategy(StrEnum):
    """Which merge produced the tested tree (`PairRun.merge_strategy`)."""

    NAIVE = "naive"
    UNION = "union"


class PatchState(StrEnum):
    """What became of one agent's patch in the evaluation (`PairRun.patch_status` values)."""

    APPLIED = "applied"
    SKIPPED = "skipped"  # empty: nothing to apply
    FAILED = "failed"  # refused or did not apply
    MISSING = "missing"  # there was no patch (the agent's run failed)


class MergeOutcome(StrEnum):
    """What became of a scored pair's two patches, as reports count it (from merge status, strategy, patches)."""

    CLEAN = "clean"  # the naive merge was clean
    RESCUED = "rescued"  # the naive merge conflicted and the union merge rescued it
    CONFLICTS = "conflicts"  # conflicts even the union merge left: nothing to test
    NOT_APPLIED = "not_applied"  # a patch was refused or did not apply
    MISSING_INPUT = "missing_input"  # an agent's patch is missing
    ERROR = "error"  # the evaluation failed otherwise
