"""Time limits: the experiment's (`--time-limit`: once it has passed no new agent starts, on any
worker; agents already running finish; the pairs not started are recorded as such, never scored,
and a later run does them; a coop agent whose teammate is not started does not work alone), and
the harness's limit on one agent run (`--agent-time-limit`), whatever the agent's own limits."""

import os
import threading
import time

import yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # the installed price data, no download

from cooperbench import api
from cooperbench.data.dataset import Pair
from cooperbench.experiment import ExperimentSpec, agent_run_id
from cooperbench.pair.agent_step import run_agent
from cooperbench.pair.eval_step import evaluate_pair
from cooperbench.store import db

from ..conftest import DATASET, Worker, run_cli
from ..fake_openai import FakeOpenAI, Hold
from .test_worker_killed import SUBMIT

LIMIT = 4.0


def test_no_agent_starts_after_the_time_limit_and_a_later_run_does_the_rest(redis_url, tmp_path, dataset_dir):
    database = f"sqlite:///{tmp_path / 'r.db'}"
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-test-limit"}
    submitted = time.monotonic()
    # the first pair's agent is still at work when the limit passes; on a pool of one, the others start later
    fake = FakeOpenAI({"solo": [Hold(lambda: time.monotonic() > submitted + LIMIT + 1, SUBMIT), SUBMIT, SUBMIT]})
    (tmp_path / "agent.yaml").write_text(
        yaml.safe_dump({"retry_base_delay": 0.01, "retry_max": 1, "model_kwargs": {"api_base": fake.base_url}})
    )
    options = dict(
        agent="mini_swe_agent",
        model="openai/solo",
        setting="solo",
        repo="memkv_task",
        features=(1, 2, 3),
        dataset=str(dataset_dir),
        broker=redis_url,
        db_url=database,
        logs=str(tmp_path / "logs"),
        agent_config=str(tmp_path / "agent.yaml"),
        timeout=120,
    )
    worker = Worker(redis_url, database, tmp_path / "worker.log", concurrency=1, extra_env=env)
    with fake:
        try:
            submitted = time.monotonic()
            first = {tuple(r["features"]): r for r in api.run("limited", time_limit=LIMIT, **options)}
            requests_then = len(fake.requests)
            again = {tuple(r["features"]): r for r in api.run("limited", **options)}
        finally:
            worker.stop()

    assert first[(1, 2)]["status"] == "done" and first[(1, 2)]["error"] is None  # it started in time
    for features in ((1, 3), (2, 3)):
        rec = first[features]
        assert (rec["status"], rec["merge_status"], rec["both_passed"]) == ("skipped", "missing_input", False)
        assert rec["error"].startswith("solo: not started: the experiment's time limit passed at "), rec["error"]
    assert requests_then == 1  # the skipped pairs' agents never called the model
    # the later run did the two skipped pairs only: one model call each
    assert {f: r["status"] for f, r in again.items()} == {(1, 2): "done", (1, 3): "done", (2, 3): "done"}
    assert len(fake.requests) == 3


def test_the_time_limit_counts_from_submission_not_from_the_model_check(tmp_path, dataset_dir, monkeypatch):
    """`--time-limit` is seconds from submission: a model check slower than the limit starts nothing late."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-limit")
    with FakeOpenAI({"solo": [SUBMIT]}, preflight_delay=LIMIT + 1) as fake:
        (tmp_path / "agent.yaml").write_text(yaml.safe_dump({"model_kwargs": {"api_base": fake.base_url}}))
        records = api.run(
            "limit-after-check",
            agent="mini_swe_agent",
            model="openai/solo",
            setting="solo",
            repo="memkv_task",
            task=2,
            features=(1, 2),
            dataset=str(dataset_dir),
            db_url=f"sqlite:///{tmp_path / 'r.db'}",
            logs=str(tmp_path / "logs"),
            agent_config=str(tmp_path / "agent.yaml"),
            time_limit=LIMIT,
            concurrency=1,
            timeout=120,
        )
    assert len(fake.preflights) == 1 and len(fake.requests) == 1  # checked (slowly), then the agent ran
    [rec] = records
    assert (rec["status"], rec["error"]) == ("done", None), rec


def test_a_coop_agent_does_not_start_alone_when_its_teammate_is_past_the_limit(redis_url, tmp_path):
    database = f"sqlite:///{tmp_path / 'r.db'}"
    pair = Pair("memkv_task", 2, (1, 3))
    spec = ExperimentSpec(
        name="limited-coop",
        agent="gold",
        dataset=str(DATASET),
        logs=str(tmp_path / "logs"),
        team_start_timeout=120,
        deadline=time.time() + 2,
    )
    early = {}

    def agent1():  # starts in time, then waits for its teammate
        early["summary"] = run_agent(spec, pair, "agent1", (1,), redis_url, database)
        early["returned"] = time.monotonic()

    thread = threading.Thread(target=agent1)
    thread.start()
    time.sleep(3)  # agent2 is picked up after the limit
    late = run_agent(spec, pair, "agent2", (3,), redis_url, database)
    withdrew = time.monotonic()
    thread.join(60)
    assert early["returned"] - withdrew < 5  # told at once, not after its 120 s team-start wait
    assert (late["status"], early["summary"]["status"]) == ("Skipped", "Skipped")
    assert early["summary"]["error"].startswith(
        "not started: teammate agent2 was not started (the experiment's time limit passed at "
    )
    rec = evaluate_pair(spec, pair, redis_url, database)
    assert (rec["status"], rec["error_kind"], rec["both_passed"]) == ("skipped", "budget", False)
    assert all(not r.patch for r in db.query(database, db.AgentRun, experiment="limited-coop"))


def test_a_bad_time_limit_is_one_line(tmp_path):
    proc = run_cli("run", "-n", "x", "-a", "gold", "--time-limit", "0", "--db", f"sqlite:///{tmp_path / 'r.db'}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["Error: --time-limit must be more than 0 seconds (got 0)"]


def test_an_agent_past_the_harness_time_limit_is_stopped_and_keeps_its_change(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-limit")
    import litellm  # noqa: F401 - loaded (seconds) before the agent's clock runs, as on a warm worker

    database = f"sqlite:///{tmp_path / 'r.db'}"
    pair = Pair("memkv_task", 2, (1, 3))
    # the agent's own limits would let this command run for 10 minutes
    command = "echo '# started' >> memkv/store.py && sleep 600"
    with FakeOpenAI({"solo": [f"Go.\n\n```bash\n{command}\n```", SUBMIT]}) as fake:
        (tmp_path / "agent.yaml").write_text(
            yaml.safe_dump(
                {
                    "command_timeout": 600,
                    "wall_time_limit": 3600,
                    "retry_base_delay": 0.01,
                    "retry_max": 1,
                    "model_kwargs": {"api_base": fake.base_url},
                }
            )
        )
        spec = ExperimentSpec(
            name="agent-limit",
            setting="solo",
            agent="mini_swe_agent",
            model="openai/solo",
            dataset=str(DATASET),
            logs=str(tmp_path / "logs"),
            agent_config=str(tmp_path / "agent.yaml"),
            agent_time_limit=3,
        )
        started = time.monotonic()
        summary = run_agent(spec, pair, "solo", pair.features, None, database)
        took = time.monotonic() - started
    assert took < 30, took
    row = db.get(database, db.AgentRun, agent_run_id("agent-limit", pair, "solo"))
    assert (summary["status"], summary["retryable"]) == ("LimitsExceeded", False)  # the agent's end, not infra
    assert row.error == "the harness's time limit for an agent run (3 s) was reached"
    assert "+# started" in row.patch  # its change so far is kept
    again = run_agent(spec, pair, "solo", pair.features, None, database)
    assert again["status"] == "LimitsExceeded" and len(fake.requests) == 1  # final: never run twice
