"""Ctrl-C on `cooperbench run`: it stops at once, leaves no sandbox, broker or half-written row behind,
and running the same command again finishes the experiment without redoing what had finished."""

import os
import signal
import subprocess
import sys
import time

import yaml

from cooperbench.store import db

from ..conftest import ROOT
from ..fake_openai import FakeOpenAI

SUBMIT = "Done.\n\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"


def _processes_mentioning(text: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if text in line and "ps -eo" not in line]


def _children(pid: int) -> list[tuple[int, str]]:
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [(int(line.split(None, 1)[0]), line.split(None, 1)[1]) for line in out.splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    """A running process (not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tmp_path, dataset_dir):
    database = f"sqlite:///{tmp_path / 'r.db'}"
    # two pairs: one agent submits at once, the other runs a command that hangs until Ctrl-C
    hang = "Let me wait.\n\n```bash\nsleep 301\n```"
    with FakeOpenAI({"model": [SUBMIT, hang, SUBMIT]}) as fake:
        (tmp_path / "agent.yaml").write_text(yaml.safe_dump({"model_kwargs": {"api_base": fake.base_url}}))
        env = {
            **os.environ,
            "COOPERBENCH_DB_URL": database,
            "COOPERBENCH_LOGS": str(tmp_path / "logs"),
            "COOPERBENCH_CACHE": str(tmp_path / "cache"),
            "COOPERBENCH_SCRATCH": str(tmp_path / "cache" / "sandboxes"),  # where the test looks for them
            "OPENAI_API_KEY": "sk-test-interrupt",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        args = [
            sys.executable,
            "-m",
            "cooperbench.cli",
            "run",
            "-n",
            "interrupted",
            "-m",
            "openai/model",
            "--setting",
            "solo",
            "--dataset",
            str(dataset_dir),
            "-s",
            "lite",
            "-r",
            "memkv_task",
            "--agent-config",
            str(tmp_path / "agent.yaml"),
            "-j",
            "2",
        ]
        first = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def done_pairs():
            return [r.id for r in db.query(database, db.PairRun, experiment="interrupted") if r.status == "done"]

        deadline = time.monotonic() + 90
        while not (done_pairs() and _processes_mentioning("sleep 301")):
            assert time.monotonic() < deadline and first.poll() is None, first.stderr.read()
            time.sleep(0.1)
        finished = {(r.id, r.finished_at) for r in db.query(database, db.AgentRun, experiment="interrupted")}
        sandboxes = tmp_path / "cache" / "sandboxes"
        assert len(finished) == 1 and any(sandboxes.iterdir())  # the stuck agent's sandbox is there
        (broker,) = [pid for pid, args in _children(first.pid) if "redis-server" in args]  # the private broker

        t0 = time.monotonic()
        first.send_signal(signal.SIGINT)
        assert first.wait(30) == 130
        assert time.monotonic() - t0 < 20  # it did not wait for the hanging command
        assert "run the same command again to resume" in first.stderr.read()
        assert list(sandboxes.iterdir()) == []  # no sandbox left behind
        deadline = time.monotonic() + 10  # killed with the sandbox (bwrap's own pid namespace ends a moment later)
        while _processes_mentioning("sleep 301") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_mentioning("sleep 301") == []  # no command of an agent left running
        assert not _alive(broker)  # nor the private broker
        statuses = sorted(r.status for r in db.query(database, db.PairRun, experiment="interrupted"))
        assert statuses == ["done", "queued"]
        assert {(r.id, r.finished_at) for r in db.query(database, db.AgentRun, experiment="interrupted")} == finished

        resumed = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
    assert "pairs: 2  finished: 2" in resumed.stdout
    assert len(fake.requests) == 3  # only the interrupted agent ran again (and submitted at once)
    runs = db.query(database, db.AgentRun, experiment="interrupted")
    assert len(runs) == 2 and all(r.status == "Submitted" and r.steps == 1 for r in runs)
    assert finished <= {(r.id, r.finished_at) for r in runs}
