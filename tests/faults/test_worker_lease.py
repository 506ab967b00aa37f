"""Leases, with the default settings (a 6-hour visibility timeout, 60 s worker leases): a worker
killed with SIGKILL mid-agent gives its tasks back within a couple of minutes, and a second
submission of a running experiment starts nothing twice and loses no message.

Two external `celery -A cooperbench worker` processes on PostgreSQL, as on a farm; the model is
the local OpenAI-protocol server, whose request log counts the agents' starts.
"""

import threading
import time

import yaml

from cooperbench import api
from cooperbench.store import db

from ..conftest import Worker, run_cli
from ..fake_openai import FakeOpenAI, Hold
from .test_worker_killed import SUBMIT, _wait_for

ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-test-lease"}


def _config(path, fake):
    path.write_text(
        yaml.safe_dump(
            {
                "retry_base_delay": 0.01,
                "retry_max": 1,
                "message_wait_timeout": 300,
                "model_kwargs": {"api_base": fake.base_url},
            }
        )
    )
    return str(path)


def _statuses(database, experiment):
    return sorted(r.status for r in db.query(database, db.PairRun, experiment=experiment))


def test_a_killed_worker_gives_its_agents_back_within_minutes_with_default_settings(
    redis_url, tmp_path, dataset_dir, postgres_url
):
    database, name = postgres_url, "lease-killed"
    killed = threading.Event()
    # the first four model calls (the four agents that start first) hang until a worker is dead
    script = [Hold(killed.is_set, SUBMIT, timeout=600) for _ in range(4)] + [SUBMIT] * 20
    with FakeOpenAI({"slow": script}) as fake:
        config = _config(tmp_path / "agent.yaml", fake)
        workers = [Worker(redis_url, database, tmp_path / f"w{i}.log", concurrency=2, extra_env=ENV) for i in (1, 2)]
        try:
            api.run(
                name,
                agent="mini_swe_agent",
                model="openai/slow",
                repo="memkv_task",
                features=(1, 2, 3),  # three coop pairs: six agents for four worker slots
                dataset=str(dataset_dir),
                broker=redis_url,
                db_url=database,
                logs=str(tmp_path / "logs"),
                agent_config=config,
                wait=False,
            )
            _wait_for(lambda: len(fake.requests) >= 4, timeout=120, what="four agents at work")
            workers[0].kill()
            killed.set()
            at = time.monotonic()
            _wait_for(
                lambda: _statuses(database, name) == ["done"] * 3,
                timeout=240,
                what="every pair to finish on the surviving worker",
            )
            took = time.monotonic() - at
        finally:
            for w in workers:
                w.stop()
    print(f"every pair done {took:.0f} s after the kill")
    assert took < 180, took  # the lease (60 s) and a reap round, not the 6-hour visibility timeout
    runs = db.query(database, db.AgentRun, experiment=name)
    assert len(runs) == 6 and all(r.status == "Submitted" for r in runs), [(r.id, r.status, r.error) for r in runs]
    assert len(db.query(database, db.Evaluation, experiment=name)) == 6
    assert "put back in the queue" in (tmp_path / "w2.log").read_text()


def test_submitting_a_running_experiment_again_starts_nothing_twice(redis_url, tmp_path, dataset_dir, postgres_url):
    database, name, pair = postgres_url, "lease-twice", "memkv_task/task2/f1-f3"
    released = threading.Event()
    fake = FakeOpenAI(
        {
            "agent1": [
                Hold(lambda: True, "Say it.\n\n```bash\nsend_message agent2 'hello'\n```"),
                Hold(released.is_set, SUBMIT),
            ],
            "agent2": [Hold(released.is_set, "Look.\n\n```bash\necho ok\n```"), SUBMIT],
        }
    )
    args = dict(
        agent="mini_swe_agent",
        model="openai/shared",
        repo="memkv_task",
        features=(1, 3),
        dataset=str(dataset_dir),
        broker=redis_url,
        db_url=database,
        logs=str(tmp_path / "logs"),
    )
    with fake:
        config = _config(tmp_path / "agent.yaml", fake)
        worker = Worker(redis_url, database, tmp_path / "w.log", concurrency=2, extra_env=ENV)
        try:
            api.run(name, agent_config=config, wait=False, **args)
            # agent1 has sent its message and waits on its next call; agent2 is at its first call
            _wait_for(
                lambda: len(fake.requests_for("agent1")) == 2 and fake.requests_for("agent2"), what="both at work"
            )
            cli = [
                "submit", "-n", name, "-a", "mini_swe_agent", "-m", "openai/shared", "-r", "memkv_task",
                "-f", "1,3", "--dataset", str(dataset_dir), "--broker", redis_url, "--db", database,
                "--logs", str(tmp_path / "logs"), "--agent-config", config,
            ]  # fmt: skip
            again = run_cli(*cli)
            assert again.returncode == 0, again.stderr
            assert "1 pair(s) already queued or running" in again.stderr, again.stderr
            # a third submission, through the API, waits for the running chord instead of sending another
            waiter = threading.Thread(target=lambda: results.append(api.run(name, agent_config=config, **args)))
            results = []
            waiter.start()
            time.sleep(3)
            released.set()
            waiter.join(timeout=180)
            assert results and [r["status"] for r in results[0]] == ["done"]
        finally:
            worker.stop()
    assert len(fake.requests_for("agent1")) == 2 and len(fake.requests_for("agent2")) == 2  # each agent started once
    assert [m.body for m in db.query(database, db.MessageRow, experiment=name)] == ["hello"]
    runs = {r.agent_id: r for r in db.query(database, db.AgentRun, experiment=name)}
    assert runs["agent2"].messages_received == 1 and runs["agent1"].messages_sent == 1
    assert fake.requests_for("agent2")[1]["messages"][-1]["content"].startswith("Message from agent1: hello")
    (rec,) = api.status(name, db_url=database)
    assert rec["status"] == "done" and rec["disruption"] is None and rec["error"] is None, rec
    assert [r.id for r in db.query(database, db.PairRun, experiment=name)] == [f"{name}|{pair}"]
