"""A fleet of farm workers on Google Compute Engine: the gcloud commands that make it.

An instance template (Debian 12, the startup script deploy/gcp/startup.sh, the farm's settings
as instance metadata, Spot if asked), a managed instance group of it, and autoscaling on the
queue depth that `cooperbench deploy queue-metrics` publishes (scraped into Cloud Monitoring
by the Ops Agent as prometheus.googleapis.com/cooperbench_queue_length/gauge). `commands`
only builds argument lists; `cooperbench deploy gcp` prints them, or runs them with --apply.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

STARTUP_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "gcp" / "startup.sh"
QUEUE_METRIC = "prometheus.googleapis.com/cooperbench_queue_length/gauge"
AGENT_QUEUE = "cooperbench.agents"
METADATA_PREFIX = "cooperbench-"  # the startup script reads cooperbench-<key> attributes


@dataclass(frozen=True)
class Fleet:
    project: str
    zone: str
    size: int
    machine_type: str
    broker_url: str
    db_url: str
    source: str  # what the VMs pip-install: a pip requirement (git+https://...@ref) or a URL
    name: str = "cooperbench-workers"
    spot: bool = False
    min_size: int = 0
    max_size: int | None = None  # None: the group's size
    pairs_per_worker: int = 4  # queued agent tasks one VM is worth, for the autoscaler
    concurrency: int = 8
    dataset_source: str | None = None  # gs://... or https://...tar.gz copied to dataset_dir at boot
    dataset_dir: str = "/data/cooperbench/dataset"
    artifacts: str | None = None  # the fleet's shared artifact store (gs://BUCKET/PREFIX); submit with --logs it
    disk_gb: int = 50
    startup_script: Path = STARTUP_SCRIPT

    def metadata(self) -> dict[str, str]:
        values = {
            "broker-url": self.broker_url,
            "db-url": self.db_url,
            "source": self.source,
            "concurrency": str(self.concurrency),
            "dataset-dir": self.dataset_dir,
        }
        if self.dataset_source:
            values["dataset-source"] = self.dataset_source
        if self.artifacts:
            values["logs-dir"] = self.artifacts
        return {METADATA_PREFIX + k: v for k, v in values.items()}


def _check(fleet: Fleet) -> None:
    if fleet.size < 0 or fleet.min_size < 0:
        raise UserError("--size and --min-size must be 0 or more")
    if (fleet.max_size if fleet.max_size is not None else fleet.size) < max(fleet.min_size, 1):
        raise UserError("--max-size must be at least 1 and at least --min-size")
    if fleet.pairs_per_worker < 1 or fleet.concurrency < 2:
        raise UserError("--pairs-per-worker must be at least 1 and --concurrency at least 2 (a coop pair)")
    for key, value in fleet.metadata().items():
        if not value:
            raise UserError(f"{key} is empty")
        if "," in value:  # gcloud's --metadata separator
            raise UserError(f"{key} may not contain a comma: {value!r}")
    if not fleet.startup_script.is_file():
        raise UserError(f"no startup script at {fleet.startup_script} (run from a checkout, or pass --startup-script)")


def commands(fleet: Fleet) -> list[list[str]]:
    """The gcloud argument lists, in order: template, group, autoscaling."""
    _check(fleet)
    template = f"{fleet.name}-template"
    common = ["--project", fleet.project]
    metadata = ",".join(f"{k}={v}" for k, v in fleet.metadata().items())
    create_template = [
        "gcloud", "compute", "instance-templates", "create", template, *common,
        "--machine-type", fleet.machine_type,
        "--image-family", "debian-12", "--image-project", "debian-cloud",
        "--boot-disk-size", f"{fleet.disk_gb}GB",
        # logging and monitoring for the Ops Agent; storage read for a gs:// dataset
        "--scopes", "logging-write,monitoring-write,storage-ro",
        "--metadata-from-file", f"startup-script={fleet.startup_script}",
        "--metadata", metadata,
    ]  # fmt: skip
    if fleet.spot:
        # a preempted VM is deleted; the group makes a new one when capacity comes back
        create_template += ["--provisioning-model", "SPOT", "--instance-termination-action", "DELETE"]
    create_group = [
        "gcloud", "compute", "instance-groups", "managed", "create", fleet.name, *common,
        "--zone", fleet.zone, "--template", template, "--size", str(fleet.size),
    ]  # fmt: skip
    autoscale = [
        "gcloud", "compute", "instance-groups", "managed", "set-autoscaling", fleet.name, *common,
        "--zone", fleet.zone,
        "--min-num-replicas", str(fleet.min_size),
        "--max-num-replicas", str(fleet.max_size if fleet.max_size is not None else fleet.size),
        "--update-stackdriver-metric", QUEUE_METRIC,
        "--stackdriver-metric-filter",
        f'resource.type = "prometheus_target" AND metric.labels.queue = "{AGENT_QUEUE}"',
        # a per-group metric: one VM for every this many queued agent tasks
        "--stackdriver-metric-single-instance-assignment", str(fleet.pairs_per_worker),
        "--cool-down-period", "300",
    ]  # fmt: skip
    return [create_template, create_group, autoscale]


def script(fleet: Fleet) -> str:
    return "\n".join(shlex.join(c) for c in commands(fleet))


def apply(fleet: Fleet, say=print) -> None:
    """Run the commands, stopping at the first that fails."""
    cmds = commands(fleet)
    if shutil.which("gcloud") is None:
        raise UserError("gcloud is not installed (https://cloud.google.com/sdk/docs/install); without --apply "
                        "the commands are only printed")  # fmt: skip
    for cmd in cmds:
        say(shlex.join(cmd))
        if subprocess.run(cmd).returncode != 0:
            raise UserError(f"gcloud failed: {shlex.join(cmd[:5])} ...")
