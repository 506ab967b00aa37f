"""The real published tasks on the docker backend (podman here): images built from their own
Dockerfiles with no Docker Hub and no GitHub, environments prepared once, every sandbox offline.

The Dockerfiles (`FROM python:3.11-slim`, `git clone https://github.com/...`) are built through
a registry mirror (`.ci/podman.sh` makes the local stand-in) with the upstream from the farm's
repository cache (git bundles here). Click's `runner.sh` reinstalls with pip at every run; its
environment is the image warmed once with network and committed, used with `PIP_NO_INDEX`.
Tiktoken's image needs a Rust toolchain from the network: its pairs are infrastructure
errors naming that. The tests run in file order: the first prepares what the others use.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from cooperbench.data.dataset import Dataset
from cooperbench.environments import prepared
from cooperbench.sandbox import get_backend

from ..conftest import run_cli
from ..docker_engine import engine  # noqa: F401  (a fixture)
from .test_published import CLICK, PUBLISHED, cli, covering_sample, published  # noqa: F401

MIRROR = "localhost/cooperbench-mirror"
pytestmark = pytest.mark.skipif(not PUBLISHED.is_dir(), reason="../shared/published (the real tasks) is not here")


@pytest.fixture(scope="module")
def docker(engine, published):  # noqa: F811
    """The published dataset, with the docker backend building through the local mirror."""
    import docker as sdk

    try:
        engine.images.get(f"{MIRROR}/library/python:3.11-slim")
    except sdk.errors.ImageNotFound:
        if os.environ.get("CI") == "true":
            pytest.fail("the mirror's python:3.11-slim is missing (bash .ci/podman.sh makes it)")
        pytest.skip("the mirror's python:3.11-slim is missing (bash .ci/podman.sh makes it)")
    saved = os.environ.get("COOPERBENCH_REGISTRY_MIRROR")
    os.environ["COOPERBENCH_REGISTRY_MIRROR"] = MIRROR
    yield published
    if saved is None:
        os.environ.pop("COOPERBENCH_REGISTRY_MIRROR", None)
    else:
        os.environ["COOPERBENCH_REGISTRY_MIRROR"] = saved


def records(proc) -> list[dict]:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.timeout(2400)  # three click images built and prepared from scratch
def test_docker_env_prepare_builds_click_offline_and_names_why_tiktoken_cannot_be_built(docker, tmp_path):
    states = records(cli("env", "prepare", "--backend", "docker", "--dataset", str(docker), "-r", CLICK, "--json",
                         tmp_path=tmp_path, timeout=2400))  # fmt: skip
    assert sorted(s["task"] for s in states) == [f"{CLICK}/task{t}" for t in (2068, 2800, 2956)]
    assert all(s["state"] == "ready" and s["toolchains"] == ["pip"] and s["image"] for s in states), states

    proc = cli("env", "prepare", "--backend", "docker", "--dataset", str(docker), "-r", "openai_tiktoken_task",
               "--json", tmp_path=tmp_path)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (state,) = json.loads(proc.stdout)
    assert state["state"] == "failed" and "cannot build the image" in state["cause"]
    assert "Rust compiler" in state["cause"], state["cause"]  # the cause, not only "exit status 1"

    listed = cli("env", "list", "--backend", "docker", tmp_path=tmp_path).stdout
    assert f"{CLICK}/task2956" in listed and "ready" in listed and "openai_tiktoken_task/task0" in listed


def test_go_and_typescript_tasks_whose_base_image_cannot_be_had_name_it_and_the_mirror_setting(docker, tmp_path):
    """golang:1.21-alpine and node:22-slim are in no registry this machine reaches (nor in the local mirror)."""
    for repo, image in (("go_chi_task", "golang:1.21-alpine"), ("react_hook_form_task", "node:22-slim")):
        proc = cli("env", "prepare", "--backend", "docker", "--dataset", str(docker), "-r", repo, "--json",
                   tmp_path=tmp_path)  # fmt: skip
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        (state,) = json.loads(proc.stdout)
        assert (
            state["state"] == "failed" and f"its base image {MIRROR}/library/{image} cannot be pulled" in state["cause"]
        )
        assert "set COOPERBENCH_REGISTRY_MIRROR to a mirror that has it" in state["cause"]


def test_the_environment_image_holds_no_future_no_build_inputs_and_agents_run_the_tests_offline(docker):
    task = Dataset(docker).task(CLICK, 2068)
    env = prepared.ensure(task, "docker")
    assert env.image and env.variables["PIP_NO_INDEX"] == "1" and not env.caches
    with get_backend("docker").create(task, labels={"agent": "probe"}, environment=env) as box:
        run = lambda cmd: box.exec(cmd, timeout=300)  # noqa: E731
        assert run("ls /opt/cooperbench-build").exit_code != 0  # upstream copy and CA bundle deleted
        assert run("git rev-list --all | wc -l").output.strip() == run("git rev-list HEAD | wc -l").output.strip()
        assert run("git remote").output.strip() == "" and run("git tag").output.strip() == ""
        head = run("git rev-parse HEAD").output.strip()
        assert head.startswith(task.base_commit[:12]) or task.base_commit.startswith(head[:12])
        # no network: neither the index nor anything else
        fetched = run("pip download --no-cache-dir -d /tmp/x --index-url https://pypi.org/simple six")
        assert fetched.exit_code != 0
        assert run("python -c \"import socket; socket.create_connection(('1.1.1.1', 80), 3)\"").exit_code != 0
        # the project and its test tools are there, as in the published image
        tests = run("python -m pytest -q -x tests/test_basic.py")
        assert tests.exit_code == 0 and " passed" in tests.output, tests.output[-1500:]


@pytest.mark.timeout(1800)
def test_docker_gold_solo_passes_a_covering_sample_of_click_pairs(docker, tmp_path):
    """14 pairs covering every click feature (every pair runs gold solo on the local backend)."""
    dataset, selection, features = covering_sample(docker, tmp_path)
    got = records(cli("run", "-n", "gold-solo-docker", "-a", "gold", "--setting", "solo", "--backend", "docker",
                      "--dataset", str(dataset), "-r", CLICK, *selection, "-j", "2", "--json",
                      tmp_path=tmp_path, timeout=1800))  # fmt: skip
    assert len(got) == 14
    assert {(r["task_id"], int(n)) for r in got for n in r["feature_passed"]} == {
        (t, n) for t, f in features.items() for n in f
    }
    assert [(r["features"], r["error"]) for r in got if not r["both_passed"]] == []
    assert all(r["error_kind"] is None for r in got)


def test_docker_gold_coop_matches_dataset_conflicts(docker, tmp_path):
    selection = ("--dataset", str(docker), "-r", CLICK, "-t", "2956", "-f", "1,2,6,8")
    expected = records(cli("dataset", "conflicts", *selection, "--json", tmp_path=tmp_path))
    proc = cli("run", "-n", "gold-coop-docker", "-a", "gold", "--backend", "docker", *selection, "-j", "2", "--json",
               tmp_path=tmp_path)  # fmt: skip
    got = {tuple(r["features"]): r for r in records(proc)}
    assert len(got) == len(expected) == 6 and {e["status"] for e in expected} == {"clean", "conflicts"}
    for e in expected:
        r = got[tuple(e["features"])]
        if e["status"] == "clean":
            assert (r["merge_status"], r["clean_success"], r["both_passed"]) == ("clean", True, True), r
        else:
            assert (r["merge_status"], r["clean_success"], r["error_kind"]) == ("conflicts", False, None), r


def test_docker_nop_passes_no_click_pair(docker, tmp_path):
    got = records(cli("run", "-n", "nop-docker", "-a", "nop", "--setting", "solo", "--backend", "docker",
                      "--dataset", str(docker), "-r", CLICK, "-t", "2800", "-f", "1,2,3", "--json",
                      tmp_path=tmp_path))  # fmt: skip
    assert len(got) == 3
    assert all(r["status"] == "done" and r["error_kind"] is None for r in got)  # scored: the tests ran and failed
    assert not any(v for r in got for v in r["feature_passed"].values())


def test_every_tiktoken_pair_on_docker_is_an_infrastructure_error_naming_the_cause(docker, tmp_path):
    proc = cli("run", "-n", "tiktoken-docker", "-a", "gold", "--setting", "solo", "--backend", "docker",
               "--dataset", str(docker), "-r", "openai_tiktoken_task", "-j", "2", "--json",
               tmp_path=tmp_path)  # fmt: skip
    assert proc.returncode == 1 and "nothing was graded: 45 infrastructure" in proc.stderr, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    assert len(got) == 45
    assert {(r["status"], r["error_kind"]) for r in got} == {("error", "infra")}
    assert all("openai_tiktoken_task/task0" in r["error"] and "Rust compiler" in r["error"] for r in got)


def test_env_rm_on_docker_removes_the_environment_image(docker, engine, tmp_path):  # noqa: F811
    import docker as sdk

    task = Dataset(docker).task(CLICK, 2800)
    env = prepared.ensure(task, "docker")
    image = env.image
    with get_backend("docker").create(task, labels={"agent": "probe"}, environment=env) as box:
        proc = cli("env", "rm", "--backend", "docker", "-r", CLICK, "-t", "2800", tmp_path=tmp_path)
        assert proc.returncode == 1 and "kept" in proc.stderr, proc.stderr  # not pulled from under a sandbox
        assert box.exec("true", timeout=60).exit_code == 0
        engine.images.get(image)
        assert prepared.read_state(prepared.folder(task, "docker")) is not None
    proc = cli("env", "rm", "--backend", "docker", "-r", CLICK, "-t", "2800", tmp_path=tmp_path)
    assert proc.returncode == 0 and "removed 1" in proc.stdout, proc.stderr
    with pytest.raises(sdk.errors.ImageNotFound):
        engine.images.get(image)
    assert prepared.read_state(prepared.folder(task, "docker")) is None


def test_dataset_validate_on_docker_uses_the_prepared_environment(docker, tmp_path):
    proc = cli("dataset", "validate", "--backend", "docker", "--dataset", str(docker), "-r", CLICK, "-t", "2956",
               "-f", "1,2", "--json", tmp_path=tmp_path)  # fmt: skip
    assert proc.returncode == 0 and json.loads(proc.stdout) == [], proc.stdout[-2000:] + proc.stderr[-2000:]
    proc = cli("dataset", "validate", "--backend", "docker", "--dataset", str(docker), "-r", "openai_tiktoken_task",
               "-f", "1", "--json", tmp_path=tmp_path)  # fmt: skip
    assert proc.returncode == 1 and "Rust compiler" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_an_engine_that_does_not_answer_is_said_in_one_line_and_not_recorded_as_the_tasks(published, tmp_path):  # noqa: F811
    gone = f"unix://{tmp_path / 'no-engine.sock'}"
    proc = run_cli("env", "prepare", "--backend", "docker", "--dataset", str(published), "-r", CLICK, "-t", "2068",
                   env={"DOCKER_HOST": gone, "COOPERBENCH_CACHE": str(tmp_path / "cache")})  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no container engine" in proc.stderr, proc.stderr
    assert not list((tmp_path / "cache").glob("environments/docker/*/*/state.json"))  # tried again next time


def test_an_environment_image_deleted_since_is_prepared_again(docker, engine):  # noqa: F811
    task = Dataset(docker).task(CLICK, 2956)
    first = prepared.ensure(task, "docker").image
    before = prepared.read_state(prepared.folder(task, "docker"))
    engine.images.remove(first)  # an `image prune` on the worker
    again = prepared.ensure(task, "docker").image
    engine.images.get(again)
    assert prepared.read_state(prepared.folder(task, "docker")).prepared_at > before.prepared_at


def test_a_runner_that_leaves_its_patch_applied_is_not_committed_into_the_environment(docker, tmp_path):
    """What the warm run applies must not end up in the image every sandbox starts from: a
    runner.sh without its clean-up fails the preparation, and its pairs are not scored."""
    dataset = tmp_path / "dataset"
    shutil.copytree(docker / CLICK / "task2068", dataset / CLICK / "task2068")
    runner = dataset / CLICK / "task2068" / "runner.sh"
    runner.write_text(runner.read_text().replace("trap cleanup EXIT INT TERM", "# no clean-up"))
    proc = cli("env", "prepare", "--backend", "docker", "--dataset", str(dataset), "--json", tmp_path=tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    (state,) = json.loads(proc.stdout)
    assert state["state"] == "failed" and "the runner left the repository changed" in state["cause"], state
