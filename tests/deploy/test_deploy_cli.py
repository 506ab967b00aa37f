"""`cooperbench deploy gcp` (the gcloud commands, printed or run) and `cooperbench deploy queue-metrics`
(the broker's queue depth as Prometheus text, read from the real Redis)."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time

import pytest
import redis
import requests

from ..conftest import ROOT, run_cli

FLEET = [
    "deploy", "gcp", "--project", "lab-1", "--zone", "europe-west1-b", "--size", "3",
    "--machine-type", "n2-standard-8", "--broker", "redis://:pw@10.0.0.2:6379/0",
    "--db", "postgresql+psycopg://cb:pw@10.0.0.2/cooperbench", "--source", "git+https://example.org/farm@v1",
]  # fmt: skip


def test_deploy_gcp_prints_template_group_and_autoscaling():
    out = run_cli(*FLEET, "--spot", "--max-size", "20", "--dataset-source", "gs://bucket/dataset",
        "--artifacts", "gs://bucket/farm",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    template, group, autoscale = [shlex.split(line) for line in out.stdout.strip().splitlines()]
    assert template[:5] == ["gcloud", "compute", "instance-templates", "create", "cooperbench-workers-template"]
    assert template[template.index("--machine-type") + 1] == "n2-standard-8"
    assert template[template.index("--provisioning-model") + 1] == "SPOT"
    assert template[template.index("--metadata-from-file") + 1] == f"startup-script={ROOT}/deploy/gcp/startup.sh"
    metadata = dict(kv.split("=", 1) for kv in template[template.index("--metadata") + 1].split(","))
    assert metadata == {
        "cooperbench-broker-url": "redis://:pw@10.0.0.2:6379/0",
        "cooperbench-db-url": "postgresql+psycopg://cb:pw@10.0.0.2/cooperbench",
        "cooperbench-source": "git+https://example.org/farm@v1",
        "cooperbench-concurrency": "8",
        "cooperbench-dataset-dir": "/data/cooperbench/dataset",
        "cooperbench-dataset-source": "gs://bucket/dataset",
        "cooperbench-logs-dir": "gs://bucket/farm",
    }
    assert group[4:6] == ["create", "cooperbench-workers"] and group[group.index("--size") + 1] == "3"
    assert group[group.index("--zone") + 1] == "europe-west1-b"
    assert autoscale[autoscale.index("--max-num-replicas") + 1] == "20"
    assert autoscale[autoscale.index("--update-stackdriver-metric") + 1].endswith("cooperbench_queue_length/gauge")
    assert 'metric.labels.queue = "cooperbench.agents"' in autoscale[autoscale.index("--stackdriver-metric-filter") + 1]
    on_demand = run_cli(*FLEET)
    assert "--provisioning-model" not in on_demand.stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--broker", ""], "need the farm's broker"),
        (["--size", "0", "--max-size", "0"], "--max-size must be at least 1"),
        (["--concurrency", "1"], "--concurrency at least 2"),
        (["--source", "a,b"], "may not contain a comma"),
        (["--startup-script", "/nonexistent/startup.sh"], "no startup script"),
    ],
)
def test_deploy_gcp_bad_input_is_one_line(extra, message):
    out = run_cli(*FLEET, *extra, env={"COOPERBENCH_BROKER_URL": ""})
    assert out.returncode != 0
    assert message in out.stderr and "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_deploy_gcp_apply_runs_the_commands_in_order_and_stops_at_a_failure(tmp_path):
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"  # a recording gcloud: fails on the group, as a quota error would
    gcloud.write_text(f'#!/bin/sh\necho "$*" >> {calls}\ncase "$*" in *"managed create"*) exit 1;; esac\n')
    gcloud.chmod(0o755)
    out = run_cli(*FLEET, "--apply", env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert out.returncode != 0 and "gcloud failed" in out.stderr
    ran = calls.read_text().splitlines()
    assert [line.split()[:4] for line in ran] == [
        ["compute", "instance-templates", "create", "cooperbench-workers-template"],
        ["compute", "instance-groups", "managed", "create"],
    ]
    out = run_cli(*FLEET, "--apply", env={"PATH": "/nonexistent"})
    assert out.returncode != 0 and "gcloud is not installed" in out.stderr


def test_queue_metrics_serves_the_brokers_queue_lengths(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.delete("cooperbench.agents", "cooperbench.evaluations", "unacked")
    client.rpush("cooperbench.agents", "a", "b", "c")
    client.rpush("cooperbench.agents\x06\x163", "d")  # a priority step's list counts too
    client.rpush("cooperbench.evaluations", "e")
    client.hset("unacked", mapping={"t1": "x", "t2": "y"})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cooperbench.cli", "deploy", "queue-metrics", "--broker", redis_url,
         "--port", str(port), "--address", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
                time.sleep(0.2)
        assert 'cooperbench_queue_length{queue="cooperbench.agents"} 4.0' in text
        assert 'cooperbench_queue_length{queue="cooperbench.evaluations"} 1.0' in text
        assert "cooperbench_tasks_unacked 2.0" in text
        client.lpop("cooperbench.agents")
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'cooperbench_queue_length{queue="cooperbench.agents"} 3.0' in text  # read at each scrape
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        client.delete("cooperbench.agents", "cooperbench.agents\x06\x163", "cooperbench.evaluations", "unacked")
