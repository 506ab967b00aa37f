"""A test suite that hangs is killed at --test-timeout: that feature fails (timed out), the others are
still tested, and the experiment finishes."""

import json
import time

from cooperbench.store import db

from ..conftest import run_cli


def test_a_hanging_test_command_is_killed_and_fails_its_feature(dataset_copy, tmp_path):
    script = dataset_copy / "memkv_task" / "task2" / "run_tests.sh"
    # feature 3's tests hang (as an infinite loop in the code under test would)
    script.write_text(
        script.read_text().replace(
            "set -euo pipefail\n", 'set -euo pipefail\ncase "$2" in *tests3.patch) sleep 600 ;; esac\n', 1
        )
    )
    database = f"sqlite:///{tmp_path / 'r.db'}"
    env = {"COOPERBENCH_DB_URL": database, "COOPERBENCH_LOGS": str(tmp_path / "logs")}
    started = time.monotonic()
    proc = run_cli(
        "run",
        "-n",
        "hang",
        "-a",
        "gold",
        "--setting",
        "solo",
        "--dataset",
        str(dataset_copy),
        "-r",
        "memkv_task",
        "-f",
        "1,3",
        "--test-timeout",
        "3",
        "--json",
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 120
    (rec,) = json.loads(proc.stdout)
    assert rec["feature_passed"] == {"1": True, "3": False}
    assert not rec["both_passed"] and rec["status"] == "done" and rec["error_kind"] is None
    rows = {e.feature: e for e in db.query(database, db.Evaluation, experiment="hang")}
    assert rows[3].timed_out and not rows[1].timed_out
    assert 2.5 < rows[3].duration < 30
    assert "test command timed out" in open(rows[3].log_path).read()
