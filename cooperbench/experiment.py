"""What an experiment is: its settings, and the ids of its pairs and agents.

The spec travels inside every Celery task (as JSON), so a worker on any machine knows
what to do; it carries no secrets (the database URL and API keys are worker-side).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .data import inputs as travel
from .data.dataset import Dataset, Pair, Task
from .errors import UserError

SETTINGS = ("coop", "solo")
COMPARED = ("setting", "agent", "model", "backend", "git", "messaging")


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    setting: str = "coop"
    agent: str = "gold"
    model: str | None = None
    backend: str = "local"
    git: bool = False
    messaging: bool = True
    dataset: str = "dataset"
    logs: str = "logs"  # the artifact store: a folder or a URL (gs://bucket/prefix), see store/backends
    agent_config: str | None = None
    test_timeout: float = 1800.0
    max_cost: float | None = None  # USD for the whole experiment; no new agent starts once it is spent
    team_start_timeout: float = 600.0  # seconds a coop agent waits for its teammates to start
    deadline: float | None = None  # epoch seconds after which no new agent starts (the --time-limit)
    agent_time_limit: float = 7200.0  # seconds one agent run may take before the harness ends it
    # the hash of the manifest of the inputs that travel with it (data/inputs.py); None: read the
    # dataset folder and agent config at their paths, as an experiment spec from before did
    inputs: str | None = None

    def __post_init__(self):
        if self.setting not in SETTINGS:
            raise UserError(f"unknown setting {self.setting!r} (use coop or solo)")
        if not self.name or "|" in self.name or "/" in self.name or self.name.startswith("."):
            raise UserError(f"bad experiment name {self.name!r} (no '/' or '|', not starting with '.')")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ExperimentSpec:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def sandbox_backend(self):
        """The experiment's sandbox backend, hiding its dataset and this machine's copies of the
        inputs (gold patches) and a local artifact store from agents."""
        from .agents import trusted
        from .sandbox import get_backend

        hide = [Path(self.dataset), travel.cache_root()] + ([] if "://" in self.logs else [Path(self.logs)])
        return get_backend(self.backend, hide=hide, trusted=trusted(self.agent))

    def task(self, repo: str, task_id: int) -> Task:
        """The pair's task: from the inputs that travel with the experiment, or the dataset folder."""
        if self.inputs is None:
            return Dataset(self.dataset).task(repo, task_id)
        return travel.task(self.logs, self.inputs, repo, task_id)

    def agent_config_path(self) -> str | None:
        """This machine's path of the agent config (a copy fetched from the store when it travels)."""
        if self.inputs is None:
            return self.agent_config
        return travel.agent_config(self.logs, self.inputs)

    def agents(self, pair: Pair) -> list[tuple[str, tuple[int, ...]]]:
        """(agent id, features) of each agent of a pair: one per feature in coop, one for all in solo."""
        if self.setting == "solo":
            return [("solo", pair.features)]
        return [(f"agent{i + 1}", (n,)) for i, n in enumerate(pair.features)]


def pair_id(experiment: str, pair: Pair) -> str:
    return f"{experiment}|{pair.key}"


def agent_run_id(experiment: str, pair: Pair, agent_id: str) -> str:
    return f"{pair_id(experiment, pair)}|{agent_id}"
