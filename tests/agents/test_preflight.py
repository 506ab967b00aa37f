"""Configuration errors are found before anything runs: `run` checks the model and its key with one
minimal call (`--no-preflight` skips it), and a bad key or an unknown model met during a run is the
configuration's error (never scored as the agent's, not retried), against the local OpenAI-protocol
server (tests/fake_openai.py) that knows one key.
"""

import json

import yaml

from cooperbench.store import db

from ..conftest import DATASET, run_cli
from ..fake_openai import FakeOpenAI

GOOD, BAD = "sk-test-GOOD-1234567", "sk-test-BAD-7654321"
SUBMIT = "Done.\n\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"


def _run(tmp_path, fake, *extra, key=BAD, model="openai/solo"):
    (tmp_path / "agent.yaml").write_text(
        yaml.safe_dump({"retry_base_delay": 0.01, "retry_max": 1, "model_kwargs": {"api_base": fake.base_url}})
    )
    return run_cli(
        "run", "-n", "pre", "--dataset", str(DATASET), "--setting", "solo", "-r", "memkv_task", "-f", "1,3",
        "-m", model,
        "--agent-config", str(tmp_path / "agent.yaml"), "--db", f"sqlite:///{tmp_path / 'r.db'}",
        "--logs", str(tmp_path / "logs"), "--json", *extra,
        env={"OPENAI_API_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}, cwd=tmp_path,
    )  # fmt: skip


def test_a_bad_key_is_refused_before_anything_starts(tmp_path):
    with FakeOpenAI({"solo": [SUBMIT]}, keys=(GOOD,)) as fake:
        proc = _run(tmp_path, fake)
    assert proc.returncode != 0 and proc.stdout == ""
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith("Error: preflight: authentication failed for model openai/solo"), line
    assert BAD not in line and "[REDACTED]" in line
    assert fake.requests == []  # no agent started
    assert db.query(f"sqlite:///{tmp_path / 'r.db'}", db.Experiment) == []  # nothing registered


def test_an_unknown_model_is_refused_before_anything_starts(tmp_path):
    with FakeOpenAI({"solo": [SUBMIT]}, missing=("no-such-model",)) as fake:
        proc = _run(tmp_path, fake, key=GOOD, model="openai/no-such-model")
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("Error: preflight: unknown model openai/no-such-model"), proc.stderr
    assert fake.requests == []


def test_a_good_configuration_passes_with_one_small_call(tmp_path):
    with FakeOpenAI({"solo": [SUBMIT]}, keys=(GOOD,)) as fake:
        proc = _run(tmp_path, fake, key=GOOD)
    assert proc.returncode == 0, proc.stderr
    assert len(fake.preflights) == 1 and len(fake.requests) == 1  # the check, then the agent's one call
    (rec,) = json.loads(proc.stdout)
    assert rec["status"] == "done" and rec["error"] is None


def test_a_bad_key_met_during_a_run_is_the_configurations_error_never_scored(tmp_path):
    with FakeOpenAI({"solo": [SUBMIT]}, keys=(GOOD,)) as fake:
        proc = _run(tmp_path, fake, "--no-preflight")
    assert proc.returncode == 1 and "nothing was graded: 1 infrastructure" in proc.stderr, proc.stderr
    assert fake.preflights == [] and len(fake.requests) == 1  # not retried: only a new key helps
    (row,) = db.query(f"sqlite:///{tmp_path / 'r.db'}", db.AgentRun, experiment="pre")
    assert row.status == "InfraError" and row.error.startswith("ModelConfigError: authentication failed"), row.error
    assert BAD not in row.error
    (rec,) = json.loads(proc.stdout)
    assert (rec["status"], rec["error_kind"]) == ("error", "infra"), rec  # not scored: left out of the rates
    assert "infrastructure errors: 1" in run_cli("status", "-n", "pre", "--db", f"sqlite:///{tmp_path / 'r.db'}").stdout
