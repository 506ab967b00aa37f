"""Live progress while `submit --wait` follows a real farm (a Celery worker process and Redis)."""

from ..conftest import DATASET, farm, redis_url, run_cli  # noqa: F401


def test_submit_wait_shows_pairs_passed_cost_infra_errors_and_time_left(farm):  # noqa: F811
    proc = run_cli(
        "submit", "-n", "progress", "-a", "gold", "--setting", "solo", "-s", "lite", "-r", "textkit_task",
        "--dataset", str(DATASET), "--broker", farm["broker"], "--db", farm["db"], "--logs", farm["logs"], "--wait",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("progress: ")]
    assert lines[0].startswith("progress: 0/2 pair(s) finished; passed 0/0 scored")
    assert lines[-1] == "progress: 2/2 pair(s) finished; passed 2/2 scored, cost $0.0000 (+2 unknown), infra errors 0"
    assert any(line.endswith(" left") for line in lines[1:-1])
