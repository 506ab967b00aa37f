"""A stand-in third-party package: an agent and a sandbox backend, found only through entry points.

Its `*.dist-info` folder beside it declares them, so putting this folder on PYTHONPATH
installs it as far as `importlib.metadata` is concerned: exactly how another package
would add an agent or a backend.
"""

import os
from pathlib import Path

from cooperbench.agents import AgentContext, AgentResult
from cooperbench.sandbox import SandboxError
from cooperbench.sandbox.local import LocalBackend


class TouchAgent:
    """Writes one file naming its features: an agent from outside the project."""

    name = "touch"

    def run(self, ctx: AgentContext) -> AgentResult:
        names = "-".join(str(f.number) for f in ctx.features)
        result = ctx.sandbox.exec(f"echo {ctx.agent_id} > touched-{names}.txt", timeout=30)
        return AgentResult("Submitted" if result.exit_code == 0 else "Error", steps=1)


class BrokenBackend(LocalBackend):
    """A backend whose agent sandboxes never start (evaluation sandboxes do): an infrastructure failure."""

    name = "broken"

    def create(self, task, *, labels, **options):
        if labels.get("role") != "eval":
            raise SandboxError("the container engine is gone")
        return super().create(task, labels=labels, **options)


class SleepyAgent:
    """Starts a long command in its sandbox and waits for it: a worker killed meanwhile leaves the sandbox."""

    name = "sleepy"

    def run(self, ctx: AgentContext) -> AgentResult:
        ctx.sandbox.exec("touch /tmp/sleepy-started; sleep 300", timeout=400)
        return AgentResult("Submitted", steps=1)


class SlowAgent:
    """Works for $COOPERBENCH_TEST_SLOW_SECONDS (default 15) in its sandbox, then submits nothing:
    another pair's long agent run, holding a worker slot."""

    name = "slow"

    def run(self, ctx: AgentContext) -> AgentResult:
        seconds = float(os.environ.get("COOPERBENCH_TEST_SLOW_SECONDS", "15"))
        ctx.sandbox.exec(f"sleep {seconds:g}", timeout=seconds + 60)
        return AgentResult("Submitted", steps=1)


class FlakyBackend(LocalBackend):
    """Every agent sandbox fails to start the first time (a marker file per pair and agent in
    $COOPERBENCH_FLAKY_DIR remembers it), then starts: a transient infrastructure failure."""

    name = "flaky"

    def create(self, task, *, labels, **options):
        name = f"{labels.get('pair', '')}-{labels.get('agent')}".replace("/", "_")
        marker = Path(os.environ["COOPERBENCH_FLAKY_DIR"]) / name
        if labels.get("role") != "eval" and not marker.exists():
            marker.write_text("failed once\n")
            raise SandboxError("the container engine hiccupped")
        return super().create(task, labels=labels, **options)
