"""Where a pair's large artifacts go on disk.

    logs/<experiment>/<repo>/task<id>/<f1-f2>/
        <agent>.patch              the agent's captured patch (agent1, agent2, or solo)
        <agent>.trajectory.json    what the agent did, step by step
        messages.json              every message between the teammates, in order
        eval/feature<N>.log        each feature's test output on the merged tree
        result.json                the pair's result record (as `status --json` prints it)
"""

from __future__ import annotations

import json
from pathlib import Path


def pair_dir(logs: Path, experiment: str, pair_key: str) -> Path:
    return Path(logs) / experiment / pair_key


def write_json(path: Path, data) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)
    return str(path)


def write_text(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
    tmp.replace(path)
    return str(path)
