"""The `gold` agent: applies its features' gold patches. A ceiling and a check of the harness.

In coop it tells its teammate which files it changes, then waits (bounded) for the
teammate's note and records what it received. In solo it applies the task's `combined.patch`
when it has one: the dataset's joint solution, which also settles how features interact (two
gold patches can each pass alone and still break each other's tests together, as click
task2800's features 1 and 2 do); without one, it applies each feature's gold patch.
"""

from __future__ import annotations

import shlex
import time

from .. import settings
from ..data.dataset import read_task_text
from ..grading.patchcheck import ensure_safe
from ..grading.patchutil import files_in
from ..statuses import AgentStatus
from . import AgentContext, AgentResult


def _apply(ctx: AgentContext, patch: str, name: str) -> tuple[bool, str]:
    ensure_safe(patch, f"{ctx.task.key}: {name}")  # a malicious dataset patch is bad input, never applied
    path = f"{ctx.sandbox.files_dir}/{name}"
    ctx.sandbox.write_file(path, patch.encode("utf-8", "surrogateescape"))
    p = shlex.quote(path)
    result = ctx.sandbox.exec(f"git apply {p} || git apply --3way {p}", timeout=300)
    return result.exit_code == 0, result.output


class GoldAgent:
    name = "gold"
    uses_environment = False  # runs none of the project's code: no environment to copy or install

    def run(self, ctx: AgentContext) -> AgentResult:
        trajectory: list[dict] = []
        sent = received = 0
        if ctx.mailbox is not None:
            files = sorted({f for feat in ctx.features for f in files_in(feat.gold_patch)})
            for mate in ctx.teammates:
                body = (
                    f"I am {ctx.agent_id}, implementing feature "
                    f"{', '.join(str(f.number) for f in ctx.features)}. I will change: {', '.join(files)}"
                )
                ctx.mailbox.send(mate, body)
                sent += 1
                trajectory.append({"role": "send", "to": mate, "content": body, "time": time.time()})

        ok, output = True, ""
        for feat in ctx.features:  # every gold patch of the run is checked, whichever is applied
            ensure_safe(feat.gold_patch, f"{ctx.task.key}: gold-feature{feat.number}.patch")
        combined = len(ctx.features) > 1 and (ctx.task.path / "combined.patch").is_file()
        if combined:
            ok, output = _apply(ctx, read_task_text(ctx.task.path, "combined.patch"), "combined.patch")
            trajectory.append({"role": "apply", "feature": "combined", "ok": ok, "output": output[-2000:]})
            if not ok:  # a combined patch that does not apply: the features' own patches, one by one
                ctx.sandbox.exec("git reset --quiet --hard && git clean -qfd", timeout=120)
        for feat in ctx.features if not (combined and ok) else ():
            ok, output = _apply(ctx, feat.gold_patch, f"gold-feature{feat.number}.patch")
            trajectory.append({"role": "apply", "feature": feat.number, "ok": ok, "output": output[-2000:]})
            if not ok:
                break

        if ctx.mailbox is not None and ctx.teammates:
            deadline = time.monotonic() + settings.get("gold_wait")
            while received < len(ctx.teammates) and time.monotonic() < deadline:
                for msg in ctx.mailbox.wait(timeout=deadline - time.monotonic()):
                    received += not msg.from_farm  # the harness's notices are not the teammate's
                    trajectory.append(
                        {
                            "role": "notice" if msg.from_farm else "receive",
                            "from": msg.sender,
                            "content": msg.body,
                            "time": msg.sent_at,
                        }
                    )
        steps = len(trajectory)
        if not ok:
            return AgentResult(
                AgentStatus.ERROR,
                steps,
                f"gold patch does not apply: {output.strip()[-300:]}",
                sent,
                received,
                trajectory,
            )
        return AgentResult(AgentStatus.SUBMITTED, steps, None, sent, received, trajectory)
