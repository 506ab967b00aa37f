"""The `mini_swe_agent` configuration: its keys and defaults, read from the optional --agent-config YAML file.

Every key is optional. An unreadable file, an unknown key or a value of the wrong type is
a `ConfigError` with a message the agent reports as its error.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

from .llm_prompts import INSTANCE_TEMPLATE, SYSTEM_TEMPLATE

RESERVED_MODEL_KWARGS = ("model", "messages", "num_retries")


class ConfigError(ValueError):
    """The agent configuration cannot be used."""


@dataclass(frozen=True)
class AgentConfig:
    step_limit: int = 100  # model calls
    cost_limit: float = 3.0  # USD, when the model's price is known
    max_tokens_total: int = 2_000_000  # input + output tokens, when the price is unknown
    wall_time_limit: float = 3600.0  # seconds for the whole run
    command_timeout: float = 120.0  # seconds per bash command
    output_limit: int = 10_000  # characters of command output shown to the model
    message_wait_timeout: float = 300.0  # seconds `send_message --wait` waits for a reply
    retry_max: int = 6  # retries of a transient API error
    retry_base_delay: float = 2.0  # seconds; doubled on each retry
    system_template: str = SYSTEM_TEMPLATE
    instance_template: str = INSTANCE_TEMPLATE
    model_kwargs: dict = field(default_factory=dict)  # passed to litellm.completion


def load_config(path: str | Path | None) -> AgentConfig:
    """The configuration in the YAML file at `path` (the defaults when `path` is None)."""
    if path is None:
        return AgentConfig()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read agent config {path}: {exc}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"agent config {path} must be a mapping of keys to values")
    return from_mapping(data)


def from_mapping(data: dict) -> AgentConfig:
    known = {f.name: f for f in fields(AgentConfig)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown agent-config key(s) {', '.join(map(str, unknown))} (known: {', '.join(known)})")
    defaults = AgentConfig()
    for key, value in data.items():
        _check(key, value, getattr(defaults, key))
    bad = sorted(set(data.get("model_kwargs", {})) & set(RESERVED_MODEL_KWARGS))
    if bad:
        raise ConfigError(f"agent-config model_kwargs may not set {', '.join(bad)} (the agent sets them)")
    return replace(defaults, **data)


def _check(key: str, value, default) -> None:
    if isinstance(default, (int, float)):
        wanted = int if isinstance(default, int) else (int, float)
        if isinstance(value, bool) or not isinstance(value, wanted) or value < 0:
            kind = "a whole number" if wanted is int else "a number"
            raise ConfigError(f"agent-config key {key} must be {kind} >= 0, not {value!r}")
    elif not isinstance(value, type(default)):
        raise ConfigError(f"agent-config key {key} must be a {type(default).__name__}, not {value!r}")
