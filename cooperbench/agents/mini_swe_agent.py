"""The `mini_swe_agent`: a small LLM coding agent that works through one bash command per turn.

Each turn the model (through litellm) answers with its reasoning and one ```bash block;
the command runs confined in the sandbox and its exit code and output are the next
observation. The run ends when the model submits (`echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT`,
status Submitted), at the step, cost (token, when the price is unknown), wall-time or
context-window limit (LimitsExceeded), or on an unusable agent configuration (Error). A
model API still unavailable after the retries raises `AgentInfraError` (the farm's failure), a
bad key or an unknown model `ModelConfigError` (the user's setup): neither is ever scored.

In coop with messaging, `send_message [--wait] <teammate> ...` is the harness's own tool:
the message goes through the pair's mailbox (the sandbox has no network), `--wait` blocks
for a reply, and messages that arrived are shown at the start of the next observation,
with the harness's notices (a teammate finished, was lost or runs again; see `liveness`),
which also end a wait for a reply. A message to a teammate that has already finished is
answered at once. All text the agent returns is stripped of API keys.
"""

from __future__ import annotations

import logging
import time

from ..errors import UserError
from ..statuses import AgentStatus
from ..team.mailbox import Message
from . import AgentContext, AgentInfraError, AgentResult, ModelConfigError, with_partial
from .llm_actions import (
    Outgoing,
    bash_commands,
    format_reminder,
    is_send_message,
    is_submit,
    observation,
    parse_send_message,
)
from .llm_client import LLM, LLMFailure, Usage, redact_all, secrets
from .llm_client import preflight as check_model
from .llm_config import AgentConfig, load_config
from .llm_prompts import SENTINEL, placeholders, render

log = logging.getLogger(__name__)
DEFAULT_MODEL = "gemini/gemini-3-flash-preview"


def format_message(msg: Message) -> str:
    return f"Notice from the harness: {msg.body}" if msg.from_farm else f"Message from {msg.sender}: {msg.body}"


def from_teammates(messages: list[Message]) -> int:
    return sum(not m.from_farm for m in messages)


class MiniSweAgent:
    uses_environment = True  # it runs the project's tests: the task environment, the project installed
    name = "mini_swe_agent"
    default_model = DEFAULT_MODEL

    @staticmethod
    def cost_limit(config) -> float:
        """The run's cost limit (`cost_limit`, USD); 0 for a config it cannot read (it then fails at once)."""
        try:
            return load_config(config).cost_limit
        except ValueError:
            return 0.0

    @staticmethod
    def preflight(model: str | None, config) -> str | None:
        """One minimal call with the run's model, key and model settings (see `agents.preflight`)."""
        try:
            kwargs = load_config(config).model_kwargs
        except ValueError as exc:
            raise UserError(str(exc)) from None
        failure = check_model(model or DEFAULT_MODEL, kwargs)
        if failure is None:
            return None
        if failure.transient:
            return f"preflight: the model API did not answer ({failure}); going on, the agents retry it"
        raise UserError(f"preflight: {failure} (nothing was started; --no-preflight skips this check)")

    def run(self, ctx: AgentContext) -> AgentResult:
        run = _Run(ctx)
        try:
            return run.execute()
        except Exception as exc:  # a sandbox or broker failure: the harness still records what the run cost
            raise with_partial(exc, run._result(AgentStatus.ERROR, f"{type(exc).__name__}: {exc}"))


class _Run:
    """One run of the agent: its conversation, counters and limits."""

    def __init__(self, ctx: AgentContext):
        self.ctx = ctx
        self.model = ctx.model or DEFAULT_MODEL
        self.messaging = bool(ctx.teammates) and ctx.mailbox is not None
        self.started = time.monotonic()
        self.config = AgentConfig()
        self.usage = Usage()
        self.messages: list[dict] = []
        self.trajectory: list[dict] = []
        self.steps = self.message_steps = self.sent = self.received = 0

    def execute(self) -> AgentResult:
        try:
            self.config = load_config(self.ctx.config)
            c = self.config
            values = placeholders(
                self.ctx,
                command_timeout=c.command_timeout,
                step_limit=c.step_limit,
                message_wait_timeout=c.message_wait_timeout,
            )
            system = render(self.config.system_template, values, "system_template")
            instance = render(self.config.instance_template, values, "instance_template")
        except ValueError as exc:
            return self._result(AgentStatus.ERROR, str(exc))
        c = self.config
        llm = LLM(self.model, c.model_kwargs, c.retry_max, c.retry_base_delay, self.usage)
        self._add("system", system)
        self._add("user", instance)
        while True:
            limit = self._limit_reached()
            if limit:
                return self._result(AgentStatus.LIMITS_EXCEEDED, limit)
            try:
                reply = llm.ask(self.messages)
            except LLMFailure as exc:
                if exc.transient:  # the provider's outage, not the agent's failure (no chained text: keys)
                    raise AgentInfraError(redact_all(str(exc), secrets(c.model_kwargs))) from None
                if exc.configuration:  # a bad key or an unknown model: the user's setup, never scored
                    raise ModelConfigError(redact_all(str(exc), secrets(c.model_kwargs))) from None
                return self._result(exc.status, str(exc))
            self.steps += 1
            self._add(
                "assistant",
                reply.content,
                usage={
                    "input_tokens": reply.input_tokens,
                    "output_tokens": reply.output_tokens,
                    "cache_read_tokens": reply.cache_read_tokens,
                    "cost_usd": reply.cost_usd,
                },
            )
            outcome = self._act(reply.content)
            if outcome is None:
                return self._result(AgentStatus.SUBMITTED)
            self._add("user", self._inbox_notes() + outcome)

    def _remaining(self) -> float:
        return self.config.wall_time_limit - (time.monotonic() - self.started)

    def _limit_reached(self) -> str | None:
        c, usage = self.config, self.usage
        if self.steps >= c.step_limit:
            return f"step limit reached ({self.steps} of {c.step_limit} steps)"
        if self._remaining() <= 0:
            return f"wall-time limit reached ({c.wall_time_limit:g} seconds)"
        if usage.cost_known and usage.known_cost >= c.cost_limit:
            return f"cost limit reached (${usage.known_cost:.4f} of ${c.cost_limit:g})"
        if not usage.cost_known and usage.tokens >= c.max_tokens_total:
            return (
                f"token limit reached ({usage.tokens} of {c.max_tokens_total} tokens; "
                f"the price of {self.model} is unknown, so max_tokens_total stands in for cost_limit)"
            )
        return None

    def _act(self, answer: str) -> str | None:
        """Carry out the answer's command; the observation, or None when the agent submitted."""
        commands = bash_commands(answer)
        if len(commands) != 1 or not commands[0].strip():
            return format_reminder(len(commands))
        command = commands[0]
        if is_submit(command):
            return None
        if self.messaging and is_send_message(command):
            self.message_steps += 1
            return self._send(command)
        timeout = max(1.0, min(self.config.command_timeout, self._remaining()))
        result = self.ctx.sandbox.exec(command, timeout=timeout, confined=True)
        if result.output.split("\n", 1)[0].strip() == SENTINEL:
            return None
        return observation(result, self.config.output_limit, timeout)

    def _send(self, command: str) -> str:
        try:
            msg = parse_send_message(command)
        except ValueError as exc:
            return f"send_message error: {exc}"
        if msg.recipient not in self.ctx.teammates:
            return f"send_message error: unknown teammate {msg.recipient!r} (yours: {', '.join(self.ctx.teammates)})"
        if not msg.body.strip():
            return "send_message error: the message is empty"
        self.ctx.mailbox.send(msg.recipient, msg.body)
        self.sent += 1
        if self.ctx.mailbox.finished(msg.recipient):
            return (
                f"{msg.recipient} has already finished; your message was delivered to its log but it will not read it"
            )
        return self._await_reply(msg) if msg.wait else f"Message sent to {msg.recipient}."

    def _await_reply(self, msg: Outgoing) -> str:
        timeout = max(0.0, min(self.config.message_wait_timeout, self._remaining()))
        replies = self.ctx.mailbox.wait(timeout)  # a notice (the teammate finished or was lost) ends it too
        answered = from_teammates(replies)
        self.received += answered
        if not replies:
            return f"Message sent to {msg.recipient}; no reply arrived within {timeout:.0f} seconds."
        head = "Reply" if answered else "No reply; instead"
        return f"Message sent to {msg.recipient}. {head}:\n" + "\n\n".join(map(format_message, replies))

    def _inbox_notes(self) -> str:
        """Messages that arrived since the last turn, as the observation's opening lines."""
        if not self.messaging:
            return ""
        arrived = self.ctx.mailbox.receive()
        self.received += from_teammates(arrived)
        return "".join(f"{format_message(m)}\n\n" for m in arrived)

    def _add(self, role: str, content: str, **extra) -> None:
        self.messages.append({"role": role, "content": content})
        self.trajectory.append({"role": role, "content": content, "time": time.time(), **extra})

    def _result(self, status: str, error: str | None = None) -> AgentResult:
        usage = self.usage
        report = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cost_usd": usage.cost_usd,
            "cost_known": usage.cost_known,
            "retries": usage.retries,
            "wall_time": round(time.monotonic() - self.started, 3),
            "message_steps": self.message_steps,
            "message_step_share": self.message_steps / self.steps if self.steps else 0.0,
            "model": self.model,
        }
        hidden = secrets(self.config.model_kwargs)
        return AgentResult(
            status,
            self.steps,
            redact_all(error, hidden),
            self.sent,
            self.received,
            redact_all(self.trajectory, hidden),
            redact_all(report, hidden),
        )
