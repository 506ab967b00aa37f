"""The LLM agent through the whole farm, as a researcher runs it: `cooperbench run` on the embedded
farm, a model served by a local OpenAI-protocol server (OPENAI_API_BASE), the key in a `.env`
file, and an experiment-wide cost cap.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from cooperbench.store import db

from ..fake_openai import Answer, FakeOpenAI

KEY = "sk-test-DOTENV-7f3a9c1e"
SUBMIT = "Nothing more to do.\n\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"


def _cli(*args, env, cwd):
    """`cooperbench` with no API key in its environment: only the working folder's `.env` has it."""
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "cooperbench.cli", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        cwd=cwd,
        timeout=600,
    )


def test_cost_cap_stops_new_pairs_and_a_higher_cap_finishes_them(dataset_dir, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / ".env").write_text(f"# keys for the agents\nexport OPENAI_API_KEY='{KEY}'\n")
    # each agent may spend $0.03 (what the cap reserves for it before it starts)
    (work / "agent.yaml").write_text(yaml.safe_dump({"retry_base_delay": 0.01, "step_limit": 5, "cost_limit": 0.03}))
    # gpt-4o has a known price: 10k prompt tokens cost about $0.025; after one agent, another's $0.03 no longer fits
    script = [Answer(SUBMIT, prompt_tokens=10_000, completion_tokens=10) for _ in range(4)]
    database = f"sqlite:///{work / 'r.db'}"
    args = [
        "run",
        "-n",
        "capped",
        "--setting",
        "solo",
        "--dataset",
        str(dataset_dir),
        "-r",
        "memkv_task",
        "-f",
        "1",
        "-m",
        "openai/gpt-4o",
        "--agent-config",
        "agent.yaml",
        "-j",
        "1",
    ]
    with FakeOpenAI({"gpt-4o": script}) as fake:
        env = {
            "OPENAI_API_BASE": fake.base_url,
            "COOPERBENCH_DB_URL": database,
            "COOPERBENCH_LOGS": str(work / "logs"),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        proc = _cli(*args, "--max-cost", "0.04", env=env, cwd=work)
        assert proc.returncode == 0, proc.stderr
        assert "not started: 3 pair(s)" in proc.stdout, proc.stdout
        assert len(fake.requests) == 1  # one pair ran (one model call), then the cap held
        assert {k.lower(): v for k, v in fake.requests[0]["headers"].items()}["authorization"] == f"Bearer {KEY}"

        proc = _cli(*args, "--max-cost", "0.04", env=env, cwd=work)
        assert "not started: 3 pair(s)" in proc.stdout and len(fake.requests) == 1
        proc = _cli(*args, "--max-cost", "1", env=env, cwd=work)  # a higher cap: the rest run, nothing twice
        assert proc.returncode == 0, proc.stderr
        assert "cost cap" not in proc.stdout and len(fake.requests) == 4

    runs = db.query(database, db.AgentRun, experiment="capped")
    assert len(runs) == 4 and all(r.status == "Submitted" for r in runs)
    assert all(r.usage["cost_known"] and r.usage["cost_usd"] > 0.02 for r in runs)
    status = json.loads(_cli("status", "-n", "capped", "--json", env=env, cwd=work).stdout)
    assert len(status) == 4 and all(r["status"] == "done" for r in status)
    stored = [p.read_text(errors="replace") for p in Path(work / "logs").rglob("*") if p.is_file()]
    assert stored and not any(KEY in text for text in stored)
    assert KEY.encode() not in (work / "r.db").read_bytes()
