"""The `mini_swe_agent`'s model calls: litellm with our own retries, token and cost accounting, and redaction.

Transient API errors (rate limits, time-outs, lost connections, 5xx) are retried with
exponential backoff; anything else (bad key, unknown model, rejected request) is an
`LLMFailure` at once. litellm's own retries are off, so this loop is the only one. A
call's cost comes from litellm's price data; a model without a known price has cost None
(unknown), never 0. `redact` removes API keys and tokens from any text the agent returns.
"""

from __future__ import annotations

import functools
import os
import re
import time
from dataclasses import dataclass

from ..statuses import AgentStatus

SECRET_NAME = re.compile(r"(_API_KEY|_ACCESS_KEY|_TOKEN|_SECRET)$")
SECRET_KWARG = re.compile(r"(^|_)(key|token|secret)$", re.I)
MIN_SECRET_LENGTH = 8


@functools.cache
def _litellm():
    """litellm, imported at the first model call: importing it loads its price data, which a command
    that calls no model (a bad option, `status`, ...) must not wait for. Prices are the installed
    litellm's own unless LITELLM_LOCAL_MODEL_COST_MAP says otherwise: the same on every worker,
    offline too (its download, tried three times with pauses, stalls each process without network)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def _transient_kinds() -> tuple[type, ...]:
    m = _litellm()
    return (
        m.RateLimitError,
        m.Timeout,
        m.APIConnectionError,
        m.InternalServerError,
        m.ServiceUnavailableError,
        m.BadGatewayError,
    )


def _permanent_kinds() -> tuple[tuple[type, str], ...]:
    m = _litellm()
    return (
        (m.AuthenticationError, "authentication failed for model {model}"),
        (m.PermissionDeniedError, "authentication failed for model {model}"),
        (m.NotFoundError, "unknown model {model}"),
        (m.BadRequestError, "model {model} rejected the request"),
    )


class LLMFailure(Exception):
    """The model cannot be used: a permanent API error, or transient ones past the retry budget.

    `status` is the run's end: LimitsExceeded when the conversation outgrew the model's
    context window, Error otherwise. `transient`: the API stayed unavailable (rate limits,
    time-outs, 5xx) past the retries, an outage of the provider rather than anything the
    agent did.
    """

    def __init__(
        self, message: str, status: str = AgentStatus.ERROR, transient: bool = False, configuration: bool = False
    ):
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.configuration = configuration  # a bad key or an unknown model: the user's setup, not the agent


@dataclass
class Reply:
    content: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cost_usd: float | None  # None: the model has no known price


@dataclass
class Usage:
    """What the model calls of one run cost so far."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    known_cost: float = 0.0
    cost_known: bool = True
    retries: int = 0

    def add(self, reply: Reply) -> None:
        self.input_tokens += reply.input_tokens
        self.output_tokens += reply.output_tokens
        self.cache_read_tokens += reply.cache_read_tokens
        if reply.cost_usd is None:
            self.cost_known = False
        else:
            self.known_cost += reply.cost_usd

    @property
    def cost_usd(self) -> float | None:
        return self.known_cost if self.cost_known else None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class LLM:
    def __init__(self, model: str, model_kwargs: dict, retry_max: int, retry_base_delay: float, usage: Usage):
        self.model = model
        self.kwargs = {**model_kwargs, "num_retries": 0}
        self.retry_max = retry_max
        self.retry_base_delay = retry_base_delay
        self.usage = usage

    def ask(self, messages: list[dict]) -> Reply:
        """One completion, retrying transient errors; raises LLMFailure."""
        attempt = 0
        while True:
            try:
                response = _litellm().completion(model=self.model, messages=messages, **self.kwargs)
            except Exception as exc:
                if isinstance(exc, _litellm().ContextWindowExceededError):
                    raise LLMFailure(
                        f"context window of model {self.model} exceeded: {exc}"[:1500], AgentStatus.LIMITS_EXCEEDED
                    ) from exc
                if not _transient(exc) or attempt >= self.retry_max:
                    raise LLMFailure(
                        self._describe(exc, attempt), transient=_transient(exc), configuration=_configuration(exc)
                    ) from exc
                time.sleep(self.retry_base_delay * 2**attempt)
                attempt += 1
                self.usage.retries += 1
                continue
            reply = _reply(response)
            self.usage.add(reply)
            return reply

    def _describe(self, exc: Exception, retries: int) -> str:
        text = str(exc).split("Traceback (most recent call last)")[0].strip()  # litellm puts one in some messages
        detail = f"{type(exc).__name__}: {text}"[:1500]
        if _transient(exc):
            return f"model {self.model} still failing after {retries} retries: {detail}"
        for kind, text in _permanent_kinds():
            if isinstance(exc, kind):
                return f"{text.format(model=self.model)}: {detail}"
        return f"unexpected error from model {self.model}: {detail}"


def _configuration(exc: Exception) -> bool:
    """A bad key, a key without access, or an unknown model: the configuration's error."""
    m = _litellm()
    return isinstance(exc, (m.AuthenticationError, m.PermissionDeniedError, m.NotFoundError))


PREFLIGHT_PROMPT = "This is a connectivity check. Reply with the word OK."


def preflight(model: str, model_kwargs: dict) -> LLMFailure | None:
    """One minimal model call (a few tokens) with the run's model and settings; None when it answers,
    else the failure (its text stripped of keys)."""
    llm = LLM(model, {"max_tokens": 5, **model_kwargs}, retry_max=2, retry_base_delay=1.0, usage=Usage())
    try:
        llm.ask([{"role": "user", "content": PREFLIGHT_PROMPT}])
    except LLMFailure as exc:
        return LLMFailure(
            redact(str(exc), secrets(model_kwargs)), transient=exc.transient, configuration=exc.configuration
        )
    return None


def price_known(model: str) -> bool:
    """Whether litellm knows what the model's tokens cost (without which a cost cap cannot be kept)."""
    try:
        info = _litellm().get_model_info(model)
    except Exception:  # noqa: BLE001 - litellm raises when the model is not in its price data
        return False
    return bool(info.get("input_cost_per_token") or info.get("output_cost_per_token"))


def _transient(exc: Exception) -> bool:
    status = getattr(exc, "status_code", None)
    return isinstance(exc, _transient_kinds()) or (isinstance(status, int) and status >= 500)


def _reply(response) -> Reply:
    usage = getattr(response, "usage", None)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or getattr(usage, "cache_read_input_tokens", None) or 0
    return Reply(
        content=response.choices[0].message.content or "",
        input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        output_tokens=getattr(usage, "completion_tokens", 0) or 0,
        cache_read_tokens=cached,
        cost_usd=_cost(response),
    )


def _cost(response) -> float | None:
    try:
        cost = _litellm().completion_cost(completion_response=response)
    except Exception:  # litellm raises when the model has no price data
        return None
    return float(cost) if cost is not None else None


def secrets(model_kwargs: dict | None = None) -> list[str]:
    """The secret values to hide: API keys, tokens and secrets from the environment and model_kwargs."""
    found = {v for k, v in os.environ.items() if SECRET_NAME.search(k.upper())}
    found |= {str(v) for k, v in (model_kwargs or {}).items() if SECRET_KWARG.search(k)}
    return sorted((s for s in found if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text: str, hidden: list[str] | None = None) -> str:
    """`text` with every secret value replaced by [REDACTED]."""
    for secret in secrets() if hidden is None else hidden:
        text = text.replace(secret, "[REDACTED]")
    return text


def redact_all(data, hidden: list[str]):
    """`data` (strings, lists and dicts, nested) with every string redacted."""
    if isinstance(data, str):
        return redact(data, hidden)
    if isinstance(data, list):
        return [redact_all(item, hidden) for item in data]
    if isinstance(data, dict):
        return {key: redact_all(value, hidden) for key, value in data.items()}
    return data
