"""End to end through a real Celery worker process and a real Redis, on the bundled dataset."""

import json
from pathlib import Path

import pytest

from cooperbench import api
from cooperbench.data.dataset import Dataset
from cooperbench.grading.checks import conflicts
from cooperbench.store import db


def run_exp(farm, name, **kw):
    return api.run(name, broker=farm["broker"], db_url=farm["db"], logs=farm["logs"], timeout=900, **kw)


def _key(r):
    return (r["repo"], r["task_id"], tuple(r["features"]))


@pytest.fixture(scope="module")
def conflict_report(dataset_dir):
    ds = Dataset(dataset_dir)
    return {_key(c): c["status"] for c in conflicts(ds, ds.pairs())}


def test_bundled_dataset_has_both_kinds_of_pairs(conflict_report):
    statuses = list(conflict_report.values())
    assert len(statuses) >= 12
    assert statuses.count("clean") >= 3 and statuses.count("conflicts") >= 3 and "error" not in statuses


def test_gold_solo_passes_every_pair(farm, dataset_dir):
    recs = run_exp(farm, "gold-solo", setting="solo", agent="gold")
    assert len(recs) == len(Dataset(dataset_dir).pairs())
    failing = [(_key(r), r["error"]) for r in recs if not r["both_passed"]]
    assert failing == []
    assert all(r["setting"] == "solo" and r["status"] == "done" and r["error_kind"] is None for r in recs)


def test_gold_coop_matches_the_conflict_report(farm, conflict_report):
    recs = run_exp(farm, "gold-coop", setting="coop", agent="gold")
    assert {_key(r) for r in recs} == set(conflict_report)
    for r in recs:
        assert r["patch_status"] == {"agent1": "applied", "agent2": "applied"}, r
        assert set(r["feature_passed"]) == {str(n) for n in r["features"]}
        if conflict_report[_key(r)] == "clean":
            assert (r["merge_status"], r["merge_strategy"]) == ("clean", "naive"), r
            assert r["both_passed"] and r["clean_success"], r
        else:
            assert (r["merge_status"], r["merge_strategy"]) == ("conflicts", "union"), r
            assert not r["clean_success"]
            assert r["both_passed"] == all(r["feature_passed"].values())  # the union merge's own outcome


def test_gold_coop_teammates_exchanged_messages(farm):
    runs = db.query(farm["db"], db.AgentRun, experiment="gold-coop")
    assert runs and all(r.messages_sent == 1 and r.messages_received == 1 for r in runs)
    messages = db.query(farm["db"], db.MessageRow, experiment="gold-coop")
    by_pair = {}
    for m in messages:
        by_pair.setdefault(m.pair_id, []).append(m)
    assert len(by_pair) == len({r.pair_id for r in runs})
    for pair_messages in by_pair.values():
        assert sorted((m.sender, m.recipient) for m in pair_messages) == [("agent1", "agent2"), ("agent2", "agent1")]
        assert sorted(m.seq for m in pair_messages) == [1, 2]
    # and the artifacts are where the documented layout says
    pair_dir = Path(farm["logs"]) / "gold-coop" / runs[0].pair_id.split("|")[1]
    assert {"agent1.patch", "agent2.patch", "agent1.trajectory.json", "messages.json", "result.json"} <= {
        p.name for p in pair_dir.iterdir()
    }
    assert len(json.loads((pair_dir / "messages.json").read_text())) == 2
    assert sorted(p.name for p in (pair_dir / "eval").iterdir()) == sorted(
        f"feature{n}.log" for n in json.loads((pair_dir / "result.json").read_text())["features"]
    )


def test_nop_passes_nothing(farm):
    recs = run_exp(farm, "nop-coop", agent="nop")
    assert recs and not any(r["both_passed"] or r["clean_success"] for r in recs)
    assert all(not any(r["feature_passed"].values()) for r in recs)
    assert all(r["patch_status"] == {"agent1": "skipped", "agent2": "skipped"} for r in recs)


def test_running_again_does_no_work_and_force_redoes(farm, dataset_dir):
    task = Dataset(dataset_dir).tasks[0]
    progress = []
    run_exp(farm, "resume", agent="gold", repo=task.repo, task=task.task_id)
    before = {r.id: r.finished_at for r in db.query(farm["db"], db.AgentRun, experiment="resume")}
    pairs_before = {r.id: r.finished_at for r in db.query(farm["db"], db.PairRun, experiment="resume")}
    assert before and pairs_before

    recs = run_exp(
        farm,
        "resume",
        agent="gold",
        repo=task.repo,
        task=task.task_id,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert progress[0][0] == progress[0][1] == len(recs)  # nothing was submitted
    assert {r.id: r.finished_at for r in db.query(farm["db"], db.AgentRun, experiment="resume")} == before
    assert {r.id: r.finished_at for r in db.query(farm["db"], db.PairRun, experiment="resume")} == pairs_before

    run_exp(farm, "resume", agent="gold", repo=task.repo, task=task.task_id, features=(1, 2), force=True)
    after = {r.id: r.finished_at for r in db.query(farm["db"], db.AgentRun, experiment="resume")}
    changed = [k for k in before if after[k] != before[k]]
    assert sorted(k.rsplit("|", 1)[1] for k in changed) == ["agent1", "agent2"]
    assert all("f1-f2" in k for k in changed)


def test_changed_settings_under_the_same_name_are_refused(farm):
    from cooperbench.errors import UserError

    with pytest.raises(UserError, match="already exists with other settings"):
        run_exp(farm, "nop-coop", agent="gold")


def test_flower_shows_which_experiment_pair_and_agent_each_task_is(farm, tmp_path):
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from ..conftest import ROOT

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "COOPERBENCH_BROKER_URL": farm["broker"], "FLOWER_UNAUTHENTICATED_API": "true"}
    flower = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cooperbench", "flower", f"--port={port}", "--address=127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=open(tmp_path / "flower.log", "w"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/tasks"
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(1)  # let flower's event consumer attach before the tasks run
        run_exp(farm, "flower-shown", agent="nop", repo="memkv_task", features=(1, 3))
        shown = set()
        for _ in range(50):
            tasks = json.loads(urllib.request.urlopen(url, timeout=5).read())
            shown = {(t["name"], t.get("args")) for t in tasks.values()}
            if len(shown) >= 3:
                break
            time.sleep(0.2)
        assert ("cooperbench.agent", "('flower-shown', 'memkv_task/task2/f1-f3', 'agent1')") in shown, shown
        assert ("cooperbench.agent", "('flower-shown', 'memkv_task/task2/f1-f3', 'agent2')") in shown
        assert ("cooperbench.evaluate", "('flower-shown', 'memkv_task/task2/f1-f3', 'evaluate')") in shown
    finally:
        flower.terminate()
        flower.wait(timeout=30)


def test_a_task_delivered_twice_changes_nothing(farm):
    """Late acknowledgement may deliver a finished task again: it must not rerun or add rows."""
    from cooperbench.experiment import ExperimentSpec
    from cooperbench.pair.agent_step import run_agent
    from cooperbench.pair.eval_step import evaluate_pair

    exp = db.get(farm["db"], db.Experiment, "gold-coop")
    pair_row = db.query(farm["db"], db.PairRun, experiment="gold-coop")[0]
    from cooperbench.data.dataset import Pair

    pair = Pair(pair_row.repo, pair_row.task_id, tuple(int(f) for f in pair_row.features.split(",")))
    spec = ExperimentSpec(
        name="gold-coop", setting=exp.setting, agent=exp.agent, dataset=exp.dataset, logs=farm["logs"]
    )

    def snapshot():
        return {
            model.__name__: sorted(
                (r.id, getattr(r, "finished_at", None)) for r in db.query(farm["db"], model, experiment="gold-coop")
            )
            for model in (db.AgentRun, db.PairRun, db.Evaluation, db.MessageRow)
        }

    before = snapshot()
    assert run_agent(spec, pair, "agent1", pair.features[:1], farm["broker"], farm["db"])["status"] == "Submitted"
    assert snapshot() == before  # the agent did not run again
    first = evaluate_pair(spec, pair, farm["broker"], farm["db"])
    again = evaluate_pair(spec, pair, farm["broker"], farm["db"])
    assert first == again
    after = snapshot()
    assert {k: [i for i, _ in v] for k, v in after.items()} == {k: [i for i, _ in v] for k, v in before.items()}
