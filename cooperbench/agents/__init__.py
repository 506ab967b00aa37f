"""The agent boundary: what an agent is given, what it returns, and the registry.

An agent works inside its sandbox on the features it was given; the harness, not the
agent, captures its patch afterwards. Agents come from `BUILTIN` or from any installed
package's `cooperbench.agents` entry points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import UserError

if TYPE_CHECKING:
    from ..data.dataset import Feature, Task
    from ..sandbox import Sandbox
    from ..team.mailbox import AgentMailbox


@dataclass
class AgentContext:
    experiment: str
    pair: str  # the pair's key, e.g. "textkit_task/task1/f1-f2"
    agent_id: str  # "agent1", "agent2" in coop; "solo" alone
    teammates: list[str]  # the other agents' ids (empty in solo)
    task: Task
    features: list[Feature]
    sandbox: Sandbox
    mailbox: AgentMailbox | None  # None when messaging is off or in solo
    model: str | None = None
    config: Any = None  # the --agent-config path (an agent parses it itself)
    git_remote: str | None = None  # with --git: the name of the pair's shared remote in the repository


@dataclass
class AgentResult:
    status: str  # a statuses.AgentStatus (an agent of another package may add its own)
    steps: int = 0
    error: str | None = None
    messages_sent: int = 0
    messages_received: int = 0
    trajectory: list[dict] = field(default_factory=list)
    usage: dict = field(default_factory=dict)  # tokens, cost, ... as the agent reports them


class AgentInfraError(RuntimeError):
    """A failure outside the agent's control that ends its run (its model's API unavailable past
    the retries): the farm's, like a sandbox or broker failure, so retried and never scored."""


class ModelConfigError(AgentInfraError):
    """The model cannot be used as configured (a bad API key, a key without access, an unknown
    model): the user's setup, not the agent's failure, so never scored; and not retried, since
    only a changed configuration helps (a later run, once it is fixed, does the agent again)."""


PARTIAL = "cooperbench_partial"  # the attribute of an exception that carries the agent's result so far


def with_partial(exc: BaseException, result: AgentResult) -> BaseException:
    """Attach to `exc` what the agent had done when it failed (steps, usage, trajectory), so the
    harness records what the run cost even when a sandbox or broker failure, or the harness's
    time limit, ends it."""
    setattr(exc, PARTIAL, result)
    return exc


def partial_result(exc: BaseException) -> AgentResult | None:
    return getattr(exc, PARTIAL, None)


class Agent(Protocol):
    name: str
    # False: the agent runs nothing of the project's (it applies or writes patches only), so its
    # sandbox gets no copy of the task environment and no installed project; missing: True
    uses_environment: bool
    # True: every command the agent runs and all code it leaves are the dataset's own (gold patches, or
    # nothing), so where this machine cannot confine commands they may run unconfined; missing: False
    trusted: bool

    def run(self, ctx: AgentContext) -> AgentResult:
        """Work on `ctx.features` in `ctx.sandbox` and say how the run ended.

        Contract: the agent's own outcomes are *returned*: `Submitted`, `LimitsExceeded`, or
        `Error` for its own failure (a bad configuration, a model that rejects the key or does
        not exist); an exception of any other type escaping `run` is also the agent's `Error`.
        Infrastructure failures are *raised* and never scored: `sandbox.SandboxError` (from
        `ctx.sandbox`), `redis.RedisError` (from `ctx.mailbox`), and `AgentInfraError` (the
        model's API still down after the agent's own retries); attach what was done so far
        with `with_partial` so its cost is kept. `errors.UserError` raised by the dataset
        (a refused gold patch) is bad input. The harness captures the patch afterwards.
        """
        ...


DEFAULT_AGENT = "mini_swe_agent"
# The built-in agents, registered here once; other packages add theirs through entry points.
BUILTIN = {
    "gold": "cooperbench.agents.gold:GoldAgent",
    "nop": "cooperbench.agents.nop:NopAgent",
    "mini_swe_agent": "cooperbench.agents.mini_swe_agent:MiniSweAgent",
}


@cache
def _registered() -> tuple[tuple[str, str], ...]:
    """The entry points of other packages, read once per process (scanning every installed
    distribution's metadata costs tens of milliseconds, and workers ask for every task)."""
    return tuple((ep.name, ep.value) for ep in entry_points(group="cooperbench.agents"))


def available(name: str | None = None) -> dict[str, str]:
    """Every registered name -> "module:attribute". Asked for a `name` the cached view lacks, the
    entry points are read again first: a package installed (or put on the path) since counts."""
    if name is not None and name not in BUILTIN and name not in dict(_registered()):
        _registered.cache_clear()
    found = dict(BUILTIN)
    for name, value in _registered():
        found.setdefault(name, value)
    return found


def check_agent(name: str) -> None:
    if name not in available(name):
        raise UserError(f"unknown agent {name!r} (known: {', '.join(sorted(available()))})")


def agent_class(name: str) -> type:
    check_agent(name)
    module, _, attr = available()[name].partition(":")
    return getattr(import_module(module), attr)


def get_agent(name: str) -> Agent:
    return agent_class(name)()


def cost_limit(name: str, config: Any = None) -> float:
    """What one run of the agent may cost at most, in USD, given its config (0 for agents without a
    cost limit, like those that call no model): what `--max-cost` reserves before the agent starts."""
    limit = getattr(agent_class(name), "cost_limit", None)
    return float(limit(config)) if callable(limit) else 0.0


def preflight(name: str, model: str | None, config: Any = None) -> str | None:
    """Check before anything runs that the agent can use its model (one minimal call, for agents that
    define `preflight`): a configuration error (bad key, unknown model) is a `UserError`; a model API
    that is down right now is not the configuration's fault, so it only gives a warning (returned)."""
    check = getattr(agent_class(name), "preflight", None)
    return check(model, config) if callable(check) else None


def trusted(name: str) -> bool:
    """Whether the agent runs only the dataset's own code (see `Agent.trusted`)."""
    return getattr(agent_class(name), "trusted", False) is True


def default_model(name: str) -> str | None:
    """The model an agent uses when none is given (None for agents without one)."""
    return getattr(agent_class(name), "default_model", None)
