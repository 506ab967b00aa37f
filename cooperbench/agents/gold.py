"""The `gold` agent: applies its features' gold patches. A ceiling and a check of the harness.

In coop it tells its teammate which files it changes, then waits (bounded) for the
teammate's note and records what it received. In solo it applies the task's `combined.patch`
when it has one: the dataset's joint solution, which also settles how features interact (two
gold patches can each pass alone and still break each other's tests together, as click
task2800's features 1 and 2 do); without one, it applies each feature's gold patch, in order.
Its patches go in one confined command (each confined command costs a sandbox start).
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

_MARK = "[cooperbench] next patch"  # separates the patches' outputs in the one command's output


def _apply(ctx: AgentContext, patches: list[tuple[str, str, object]], trajectory: list[dict]) -> tuple[bool, str]:
    """Apply (file name, patch, label) in order in one confined command, stopping at the first that
    does not apply (plain, then 3-way); one trajectory entry per patch tried."""
    lines = []
    for name, patch, _ in patches:
        ensure_safe(patch, f"{ctx.task.key}: {name}")  # a malicious dataset patch is bad input, never applied
        path = f"{ctx.sandbox.files_dir}/{name}"
        ctx.sandbox.write_file(path, patch.encode("utf-8", "surrogateescape"))
        p = shlex.quote(path)
        lines.append(f"echo {_MARK}; git apply {p} || git apply --3way {p} || exit 1")
    result = ctx.sandbox.exec("\n".join(lines), timeout=300)
    outputs = result.output.split(f"{_MARK}\n")[1:] or [result.output]
    for (_, _, label), output in zip(patches, outputs, strict=False):  # those tried: up to the failing one
        trajectory.append({"role": "apply", "feature": label, "ok": True, "output": output[-2000:]})
    if result.exit_code != 0:
        trajectory[-1]["ok"] = False
    return result.exit_code == 0, outputs[-1]


class GoldAgent:
    name = "gold"
    uses_environment = False  # runs none of the project's code: no environment to copy or install
    trusted = True  # applies the dataset's gold patches and nothing else

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
            combined_patch = read_task_text(ctx.task.path, "combined.patch")
            ok, output = _apply(ctx, [("combined.patch", combined_patch, "combined")], trajectory)
            if not ok:  # a combined patch that does not apply: the features' own patches, one by one
                ctx.sandbox.exec("git reset --quiet --hard && git clean -qfd", timeout=120)
        if not (combined and ok):  # every patch in one command (each confined command costs a sandbox start)
            own = [(f"gold-feature{f.number}.patch", f.gold_patch, f.number) for f in ctx.features]
            ok, output = _apply(ctx, own, trajectory)

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
