"""A scripted `mini_swe_agent` on a published task: it applies feature 1's gold and tests patches in its
own sandbox, runs the task's tests there the way a developer would, and submits. The model is the
fake OpenAI-protocol server (`tests/fake_openai.py`), so the agent's real loop and sandbox run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cooperbench.data.dataset import Dataset, Pair
from cooperbench.experiment import ExperimentSpec
from cooperbench.pair.agent_step import run_agent
from cooperbench.store import db

from ..fake_openai import FakeOpenAI


@dataclass
class ScriptedRun:
    spec: ExperimentSpec
    pair: Pair
    database: str
    observation: str  # what the agent saw of its test command
    patch: str  # the patch the harness captured


def run_tests_as_agent(dataset: Path, repo: str, task_id: int, test_command: str, tmp_path: Path) -> ScriptedRun:
    """Run the scripted agent, solo, on feature 1 of the task (the caller sets OPENAI_API_KEY)."""
    feature = Dataset(dataset).task(repo, task_id).feature(1)

    def bash(command: str) -> str:
        return f"Next.\n\n```bash\n{command}\n```"

    script = [
        bash(f"cat > /tmp/f.patch <<'EOF'\n{feature.gold_patch}EOF\ngit apply /tmp/f.patch && git status --short"),
        bash(f"cat > /tmp/t.patch <<'EOF'\n{feature.tests_patch}EOF\ngit apply /tmp/t.patch"),
        bash(test_command),
        "Done.\n\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```",
    ]
    pair = Pair(repo, task_id, (1, 2))
    database = f"sqlite:///{tmp_path / 'r.db'}"
    name = f"scripted-{repo}"
    with FakeOpenAI({"solo": script}) as fake:
        config = tmp_path / "agent.yaml"
        config.write_text(
            json.dumps({"retry_max": 1, "command_timeout": 600, "model_kwargs": {"api_base": fake.base_url}})
        )
        spec = ExperimentSpec(
            name=name,
            setting="solo",
            agent="mini_swe_agent",
            model="openai/solo",
            dataset=str(dataset),
            logs=str(tmp_path / "logs"),
            agent_config=str(config),
        )
        summary = run_agent(spec, pair, "solo", (1,), None, database)
        assert summary["status"] == "Submitted", summary
        observation = fake.requests[3]["messages"][-1]["content"]  # after the third command
    (row,) = db.query(database, db.AgentRun, experiment=name)
    return ScriptedRun(spec, pair, database, observation, row.patch)
