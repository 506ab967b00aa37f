"""Where a pair's large artifacts go on disk: `PairPaths` owns every file name of a pair's folder.

    logs/<experiment>/<repo>/task<id>/<f1-f2>/
        <agent>.patch              the agent's captured patch (agent1, agent2, or solo)
        <agent>.trajectory.json    what the agent did, step by step
        messages.json              every message between the teammates, in order
        eval/feature<N>.log        each feature's test output on the merged tree
        result.json                the pair's result record (as `status --json` prints it)

Nothing else spells these names: writers and readers ask a `PairPaths`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PairPaths:
    root: Path  # the pair's folder

    @classmethod
    def of(cls, logs: str | Path, experiment: str, pair_key: str) -> PairPaths:
        return cls(Path(logs) / experiment / pair_key)

    def patch(self, agent_id: str) -> Path:
        return self.root / f"{agent_id}.patch"

    def trajectory(self, agent_id: str) -> Path:
        return self.root / f"{agent_id}.trajectory.json"

    @property
    def messages(self) -> Path:
        return self.root / "messages.json"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    def eval_log(self, feature: int) -> Path:
        return self.eval_dir / f"feature{feature}.log"


def write_json(path: Path, data) -> str:
    """Write `data` as JSON, whole or not at all (through a temporary file); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)
    return str(path)


def write_text(path: Path, text: str) -> str:
    """Write `text`, whole or not at all; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
    tmp.replace(path)
    return str(path)
