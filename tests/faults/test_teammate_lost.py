"""A teammate's worker killed with SIGKILL mid-run: the other agent is told at once (its wait for a
reply ends), the killed agent runs again from the beginning with the conversation so far, and the
pair is recorded once, marked as disrupted.

Each agent runs on a worker of its own (one process each). Heartbeats lapse after 3 s here
(COOPERBENCH_HEARTBEAT_TTL; 30 s by default); the killed agent's task comes back after the
visibility timeout (30 s here, above the surviving agent's whole run).
"""

import os
import threading
import time

import yaml

from cooperbench import api
from cooperbench.store import db
from cooperbench.team.liveness import finished_notice, lost_notice
from cooperbench.team.mailbox import Mailbox

from ..conftest import Worker
from ..fake_openai import FakeOpenAI, Hold
from .test_worker_killed import SUBMIT, _rows, _wait_for

ENV = {
    "COOPERBENCH_VISIBILITY_TIMEOUT": "30",
    "COOPERBENCH_RESTORE_INTERVAL": "1",
    "COOPERBENCH_RESTORE_THROTTLE": "1",
    "COOPERBENCH_HEARTBEAT_TTL": "3",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "OPENAI_API_KEY": "sk-test-fault",
}
QUESTION = "Which files do you change?"
PAIR = "memkv_task/task2/f1-f3"


def bash(command: str) -> str:
    return f"Next.\n\n```bash\n{command}\n```"


def test_a_teammate_killed_mid_run_is_reported_and_run_again(redis_url, tmp_path, dataset_dir):
    database = f"sqlite:///{tmp_path / 'r.db'}"
    killed = threading.Event()
    fake = FakeOpenAI(
        {
            # agent1 asks (and waits for the answer) once agent2 is at work
            "agent1": [
                Hold(lambda: fake.requests_for("agent2"), bash(f"send_message --wait agent2 '{QUESTION}'")),
                SUBMIT,
            ],
            # agent2's first model call hangs until its worker is dead; its second run looks around, then submits
            "agent2": [Hold(killed.is_set, SUBMIT, timeout=120), bash("echo restarted"), SUBMIT],
        }
    )
    (tmp_path / "agent.yaml").write_text(
        yaml.safe_dump(
            {
                "retry_base_delay": 0.01,
                "retry_max": 1,
                "message_wait_timeout": 300,
                "model_kwargs": {"api_base": fake.base_url},
            }
        )
    )
    workers = [Worker(redis_url, database, tmp_path / f"worker{i}.log", concurrency=1, extra_env=ENV) for i in (1, 2)]
    with fake:
        try:
            api.run(
                "lost-mate",
                agent="mini_swe_agent",
                model="openai/shared",
                repo="memkv_task",
                features=(1, 3),
                dataset=str(dataset_dir),
                broker=redis_url,
                db_url=database,
                logs=str(tmp_path / "logs"),
                agent_config=str(tmp_path / "agent.yaml"),
                wait=False,
            )
            box = Mailbox(redis_url, "lost-mate", PAIR)
            _wait_for(lambda: box.log(), what="agent1's question")
            host_pid = box.redis.get(box.key("alive:agent2")).decode()
            (doomed,) = [w for w in workers if os.getpgid(int(host_pid.rsplit(":", 1)[1])) == w.proc.pid]
            doomed.kill()
            killed.set()
            at = time.monotonic()
            _wait_for(lambda: len(fake.requests_for("agent1")) == 2, what="agent1's next turn")
            told_after = time.monotonic() - at
            _wait_for(
                lambda: [r.status for r in db.query(database, db.PairRun, experiment="lost-mate")] == ["done"],
                timeout=180,
                what="the pair to finish",
            )
        finally:
            for w in workers:
                w.stop()

    assert told_after < 30, told_after  # the heartbeat's lapse, not agent1's 300 s wait
    assert fake.requests_for("agent1")[1]["messages"][-1]["content"] == (
        "Message sent to agent2. No reply; instead:\nNotice from the harness: " + lost_notice("agent2")
    )
    # agent2's second run starts from the beginning, with agent1's question and agent1's end
    first_observation = fake.requests_for("agent2")[2]["messages"][-1]["content"]
    assert first_observation.startswith(
        f"Message from agent1: {QUESTION}\n\nNotice from the harness: "
        f"{finished_notice('agent1')}\n\nExit code: 0\nOutput:\nrestarted"
    )

    assert _rows(database, "lost-mate") == {
        "PairRun": [f"lost-mate|{PAIR}"],
        "AgentRun": [f"lost-mate|{PAIR}|agent1", f"lost-mate|{PAIR}|agent2"],
        "Evaluation": [f"lost-mate|{PAIR}|1", f"lost-mate|{PAIR}|3"],
    }
    runs = {r.agent_id: r for r in db.query(database, db.AgentRun, experiment="lost-mate")}
    assert (runs["agent1"].status, runs["agent1"].steps, runs["agent1"].usage["teammates_lost"]) == (
        "Submitted",
        2,
        ["agent2"],
    )
    assert (runs["agent2"].status, runs["agent2"].steps, runs["agent2"].messages_received) == ("Submitted", 2, 1)
    assert "teammates_lost" not in runs["agent2"].usage
    (rec,) = api.status("lost-mate", db_url=database)
    assert rec["status"] == "done" and rec["error_kind"] is None
    assert rec["disruption"] == "agent1 lost agent2 mid-run; agent2 started after agent1 had finished"
    assert [m.body for m in db.query(database, db.MessageRow, experiment="lost-mate")] == [QUESTION]
