"""The docker backend on a real engine (podman's Docker API in CI), the bundled dataset and a real worker."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from cooperbench import api
from cooperbench.data.dataset import Dataset
from cooperbench.data.repocache import RepoCache
from cooperbench.grading.checks import conflicts
from cooperbench.sandbox import Sandbox, get_backend, images
from cooperbench.sandbox.gc import gc
from cooperbench.team import remote as teamremote

from ..conftest import Worker, drop_queued_work
from ..docker_engine import containers, engine  # noqa: F401,F811  (the fixture)

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
MEMKV_LATER = "28926c3664f2"  # upstream main after the base, tagged v1.1.0 (dataset/README.md)


@pytest.fixture(scope="module")
def task(dataset_dir):
    return Dataset(dataset_dir).task("memkv_task", 2)


@pytest.fixture(scope="module")
def backend(engine):
    return get_backend("docker", hide=[Path("/nonexistent")])


@pytest.fixture
def sandbox(backend, task):
    sb = backend.create(task, labels={"experiment": "t-docker", "pair": "memkv_task/task2/f1-f2", "agent": "agent1"})
    yield sb
    sb.close()


def _exec(sb, command, timeout=60):
    result = sb.exec(command, timeout=timeout)
    assert result.exit_code == 0, result.output
    return result.output


# 1. the protocol ----------------------------------------------------------------------------


def test_exec_output_exit_code_and_files(sandbox, engine):
    assert isinstance(sandbox, Sandbox)
    assert (sandbox.repo_dir, sandbox.files_dir) == ("/workspace/repo", "/patches")
    r = sandbox.exec("echo out; echo err >&2; pwd; exit 7", timeout=30)
    assert (r.exit_code, r.timed_out) == (7, False)
    assert r.output.split() == ["out", "err", "/workspace/repo"]
    assert sandbox.exec("pwd", timeout=30, cwd="/tmp").output.strip() == "/tmp"
    data = os.urandom(3 * 1024 * 1024)
    sandbox.write_file("/patches/deep/dir/blob.bin", data)
    assert sandbox.read_file("/patches/deep/dir/blob.bin") == data
    assert (
        _exec(sandbox, "sha256sum /patches/deep/dir/blob.bin").split()[0]
        == __import__("hashlib").sha256(data).hexdigest()
    )
    odd = '/patches/it\'s a "name"; $(touch /tmp/pwned).txt'
    sandbox.write_file(odd, b"x")
    assert sandbox.read_file(odd) == b"x" and sandbox.exec("test -e /tmp/pwned", timeout=30).exit_code != 0
    with pytest.raises(FileNotFoundError):
        sandbox.read_file("/patches/missing")


def test_timeout_kills_the_command(sandbox):
    start = time.monotonic()
    r = sandbox.exec("echo started; sleep 60; echo never", timeout=2)
    assert r.timed_out and r.exit_code != 0 and time.monotonic() - start < 20
    assert "started" in r.output and "never" not in r.output
    assert "sleep 60" not in _exec(sandbox, "ps -eo args 2>/dev/null || cat /proc/[0-9]*/cmdline")


def test_close_removes_the_container_even_after_an_exception(backend, task, engine):
    with pytest.raises(RuntimeError):
        with backend.create(task, labels={"experiment": "t-docker-close", "agent": "x"}) as sb:
            assert containers(engine, experiment="t-docker-close")
            raise RuntimeError("boom")
    assert containers(engine, experiment="t-docker-close") == []
    sb.close()  # closing twice is harmless


# 2. the repository holds the base commit and nothing after it --------------------------------


def test_repository_holds_only_the_base(sandbox, task):
    assert _exec(sandbox, "git rev-parse HEAD").strip() == task.base_commit
    assert _exec(sandbox, "git branch --show-current").strip() == "main"
    assert _exec(sandbox, "git log --all --format=%H").split() == _exec(sandbox, "git log --format=%H HEAD").split()
    assert len(_exec(sandbox, "git log --all --format=%H").split()) == 3
    assert _exec(sandbox, "git tag") == "" and _exec(sandbox, "git remote") == ""
    assert _exec(sandbox, "git for-each-ref --format='%(refname)'").split() == ["refs/heads/main"]
    assert _exec(sandbox, "git reflog --all | wc -l").strip() == "0"
    assert sandbox.exec(f"git cat-file -e {MEMKV_LATER}^{{commit}}", timeout=30).exit_code != 0
    assert sandbox.exec("git fsck --lost-found --unreachable 2>&1 | grep -c commit", timeout=60).output.strip() == "0"
    assert _exec(sandbox, "git status --porcelain") == ""
    assert _exec(sandbox, "git config user.email").strip()  # harness merges can commit


# 3. no network -------------------------------------------------------------------------------


def _host_ip() -> str:
    for ip in socket.gethostbyname_ex(socket.gethostname())[2] + [_route_ip()]:
        if ip and not ip.startswith("127."):
            return ip
    pytest.fail("the host has no non-loopback address")


def _route_ip() -> str:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
        return s.getsockname()[0]
    except OSError:
        return ""
    finally:
        s.close()


def test_an_agent_container_has_no_network(sandbox):
    ip = _host_ip()
    server = socket.create_server(("0.0.0.0", 0))
    port = server.getsockname()[1]
    socket.create_connection((ip, port), timeout=5).close()  # the host itself reaches it
    assert _exec(sandbox, "ls /sys/class/net").split() == ["lo"]
    probe = f"""python3 - <<'EOF'
import socket
for target in [({ip!r}, {port}), ("{socket.gethostname()}", {port}), ("host.containers.internal", {port}),
               ("deb.debian.org", 80)]:
    try:
        socket.create_connection(target, timeout=5).close()
        print("REACHED", target)
    except OSError as exc:
        print("blocked", target, type(exc).__name__)
EOF"""
    out = _exec(sandbox, probe)
    assert "REACHED" not in out and out.count("blocked") == 4, out
    server.close()


# 4. labels, limits, entrypoint ---------------------------------------------------------------


def test_labels_limits_and_entrypoint(sandbox, engine):
    (c,) = [c for c in containers(engine, experiment="t-docker") if c.id == sandbox.id]
    labels = c.labels
    assert labels["cooperbench.experiment"] == "t-docker" and labels["cooperbench.agent"] == "agent1"
    assert labels["cooperbench.pair"] == "memkv_task/task2/f1-f2" and labels["cooperbench.role"] == "agent"
    host, pid, _ = labels["cooperbench.owner"].split(":")
    assert host == socket.gethostname() and int(pid) == os.getpid()
    cfg, hc = c.attrs["Config"], c.attrs["HostConfig"]
    assert cfg["Entrypoint"] in (["sleep"], "sleep") and cfg["Cmd"] == ["1800"]
    assert hc["NanoCpus"] == 1_000_000_000 and hc["Memory"] == 1024**3
    assert hc["NetworkMode"] == "none"
    assert hc["PidsLimit"] == 512 and "no-new-privileges" in " ".join(hc["SecurityOpt"] or [])
    limits = sandbox.exec("prlimit --cpu --fsize --data --noheadings --raw -o SOFT", timeout=30).output.split()
    assert sorted(limits) == sorted(["3600", str(4096 * 1024**2), str(1024**3)])
    assert c.image.tags and c.image.tags[0].split("/")[-1].startswith("cooperbench-sandbox-memkv_task-task2:")


def test_image_names_and_test_command_are_shared(task):
    assert images.prebuilt_image(task, "akhatua/cooperbench-") == "akhatua/cooperbench-memkv:task2"
    assert images.prebuilt_image(task, "") is None
    assert images.build_tag(task, "a").startswith("cooperbench-task-memkv_task-task2:")
    assert images.build_tag(task, "a") != images.build_tag(task, "b")
    assert (
        images.runner_command(["/patches/tests1.patch", "/patches/feature1.patch"])
        == "/usr/local/bin/runner.sh tests1.patch feature1.patch"
    )


# 6. the pair's shared git remote --------------------------------------------------------------


def test_team_remote_between_two_containers(backend, task, engine):
    remote = teamremote.ensure(
        "t-docker-git", "memkv_task/task2/f1-f2", RepoCache().base(task.repo_url, task.base_commit)
    )
    theirs = teamremote.ensure(
        "t-docker-git", "memkv_task/task2/f1-f3", RepoCache().base(task.repo_url, task.base_commit)
    )
    labels = {"experiment": "t-docker-git", "pair": "memkv_task/task2/f1-f2"}
    a = backend.create(task, labels={**labels, "agent": "agent1"}, team_remote=str(remote))
    b = backend.create(task, labels={**labels, "agent": "agent2"}, team_remote=str(remote))
    try:
        _exec(
            a,
            "echo one > shared.txt && git add shared.txt && git commit -qm 'from agent1' && "
            "git push -q team HEAD:agent1",
        )
        assert "from agent1" in _exec(b, "git fetch -q team && git log --format=%s team/agent1 -1")
        _exec(
            b,
            "git checkout -q -b mine team/agent1 && echo two >> shared.txt && git commit -qam two && "
            "git push -q team HEAD:agent2",
        )
        assert "two" in _exec(a, "git fetch -q team && git show team/agent2:shared.txt")
        assert "00000000" not in _exec(a, "cut -f2 /proc/net/route | tail -n +2")  # no default route out
        server = socket.create_server(("0.0.0.0", 0))  # a service of the host, on every address
        port = server.getsockname()[1]
        gateways = _exec(
            a,
            "python3 -c \"import socket,struct; print(socket.inet_ntoa(struct.pack('<L', int("
            "open('/proc/net/route').read().split()[12], 16) + (1 << 24))))\"",
        ).strip()
        probe = f"""python3 - <<'EOF'
import socket
for host in [{_host_ip()!r}, {gateways!r}, "host.containers.internal", "deb.debian.org"]:
    try:
        socket.create_connection((host, {port}), timeout=3).close()
        print("REACHED", host)
    except OSError as exc:
        print("blocked", host, type(exc).__name__)
EOF"""
        out = _exec(a, probe)
        server.close()
        assert "REACHED" not in out and out.count("blocked") == 4, out
        assert _exec(a, "git remote").split() == ["team"]
        # another pair's agent on the same git server: the remote's name without its token leads nowhere
        other = backend.create(
            task, labels={**labels, "pair": "memkv_task/task2/f1-f3", "agent": "agent1"}, team_remote=str(theirs)
        )
        try:
            url = _exec(a, "git remote get-url team").strip()
            assert url.endswith(remote.name) and len(remote.name) > len("f1-f2.git") + 30
            guess = url.rsplit("/", 1)[0] + "/f1-f2.git"
            for attempt in (f"git ls-remote {guess}", f"git push -q {guess} HEAD:stolen"):
                assert "BREACH" not in other.exec(f"{attempt} && echo BREACH", timeout=60).output
            assert "BREACH" in other.exec(f"git ls-remote {url} >/dev/null && echo BREACH", timeout=60).output
        finally:
            other.close()
    finally:
        a.close()
        b.close()


def test_gc_removes_a_git_server_whose_folder_is_gone(backend, task, engine, tmp_path):
    root = tmp_path / "remotes"
    name, address = backend.git_server(root, backend.image_for(task))
    assert address and backend.git_server(root, backend.image_for(task)) == (name, address)  # made once
    assert name not in gc()  # its folder is there: kept
    root.rmdir()
    assert name in gc()
    assert not [c for c in containers(engine, service="git") if c.name == name]


# the modal backend's sandbox logic, on a container standing in for a Modal sandbox ----------


class ModalOnContainers:
    """A backend whose sandboxes are the modal backend's `ModalSandbox` around a real container."""

    def __init__(self, docker_backend):
        self.docker = docker_backend

    def create(self, task, *, labels, team_remote=None):
        from cooperbench.sandbox.modal import ModalSandbox

        from ..docker_engine import ContainerAsModalSandbox

        return ModalSandbox(ContainerAsModalSandbox(self.docker.create(task, labels=labels).container))


def test_modal_sandbox_logic_on_a_container(backend, task, engine):
    from cooperbench.grading.merge_and_test import merge_and_test

    modal_like = ModalOnContainers(backend)
    sb = modal_like.create(task, labels={"experiment": "t-modal", "agent": "agent1"})
    try:
        r = sb.exec("echo out; echo err >&2; exit 3", timeout=30)
        assert (r.exit_code, r.output.split()) == (3, ["out", "err"])
        assert sb.exec("sleep 30", timeout=2).timed_out
        data = os.urandom(3 * 1024 * 1024)
        sb.write_file("/patches/new/dir/blob.bin", data)
        assert sb.read_file("/patches/new/dir/blob.bin") == data
        assert sb.test_command(task, ["/patches/tests1.patch"]) == "/usr/local/bin/runner.sh tests1.patch"
    finally:
        sb.close()
    assert containers(engine, experiment="t-modal") == []
    outcome = merge_and_test(
        task,
        [1, 3],
        {"agent1": task.feature(1).gold_patch, "agent2": task.feature(3).gold_patch},
        modal_like,
        labels={"experiment": "t-modal", "pair": "memkv_task/task2/f1-f3"},
    )
    assert (outcome.merge_status, outcome.clean_success) == ("clean", True), outcome


def test_modal_backend_without_the_package_is_a_one_line_error():
    try:
        import modal  # noqa: F401

        pytest.skip("the modal package is installed")
    except ImportError:
        pass
    from cooperbench.errors import UserError

    with pytest.raises(UserError, match="pip install"):
        get_backend("modal", hide=[])


# 5. end to end through a real worker, and 7. gc after a killed worker ------------------------


@pytest.fixture(scope="module")
def docker_farm(engine, redis_url, tmp_path_factory):
    base = tmp_path_factory.mktemp("docker-farm")
    database = f"sqlite:///{base / 'farm.db'}"
    pythonpath = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")]))
    worker = Worker(redis_url, database, base / "worker.log", concurrency=4, extra_env={"PYTHONPATH": pythonpath})
    yield {"broker": redis_url, "db": database, "logs": str(base / "logs"), "worker": worker}
    worker.stop()
    drop_queued_work(redis_url)  # the last test kills the worker mid-pair: its tasks must not reach later tests


def _run(farm, name, **kw):
    return api.run(
        name,
        broker=farm["broker"],
        db_url=farm["db"],
        logs=farm["logs"],
        timeout=900,
        backend="docker",
        repo="memkv_task",
        **kw,
    )


def _key(r):
    return tuple(r["features"])


@pytest.fixture(scope="module")
def memkv_report(dataset_dir):
    ds = Dataset(dataset_dir)
    return {tuple(c["features"]): c["status"] for c in conflicts(ds, ds.pairs(repo="memkv_task"))}


def _check_coop(recs, report):
    assert {_key(r) for r in recs} == set(report)
    for r in recs:
        assert r["error"] is None and r["patch_status"] == {"agent1": "applied", "agent2": "applied"}, r
        if report[_key(r)] == "clean":
            assert (r["merge_status"], r["merge_strategy"]) == ("clean", "naive"), r
            assert r["both_passed"] and r["clean_success"], r
        else:
            assert r["merge_status"] == "conflicts" and not r["clean_success"], r


def test_gold_solo_in_containers_passes_every_pair(docker_farm, engine, memkv_report):
    recs = _run(docker_farm, "d-gold-solo", setting="solo", agent="gold")
    assert len(recs) == len(memkv_report) == 10
    assert [(_key(r), r["error"]) for r in recs if not r["both_passed"]] == []
    assert containers(engine, experiment="d-gold-solo") == []


def test_gold_coop_in_containers_matches_the_conflict_report(docker_farm, engine, memkv_report):
    recs = _run(docker_farm, "d-gold-coop", setting="coop", agent="gold")
    _check_coop(recs, memkv_report)
    assert {_key(r) for r in recs if r["both_passed"]} == {k for k, s in memkv_report.items() if s == "clean"} | {
        (1, 2),
        (1, 5),
        (2, 5),
    }  # union merges that pass (dataset/README.md)
    assert containers(engine, experiment="d-gold-coop") == []


def test_nop_in_containers_passes_nothing(docker_farm):
    recs = _run(docker_farm, "d-nop", agent="nop", features=(1, 3))
    assert len(recs) == 1 and not recs[0]["both_passed"] and not any(recs[0]["feature_passed"].values())
    assert recs[0]["patch_status"] == {"agent1": "skipped", "agent2": "skipped"}


def test_gold_coop_with_git_in_containers(docker_farm, engine, memkv_report):
    recs = _run(docker_farm, "d-gold-git", setting="coop", agent="gold", git=True, features=(1, 3))
    _check_coop(recs, {(1, 3): memkv_report[(1, 3)]})
    assert engine.networks.list(names=["cooperbench-git-net"])


def test_gc_removes_the_containers_of_a_killed_worker(docker_farm, engine, monkeypatch):
    """Last in the module: it kills the module's worker."""
    monkeypatch.syspath_prepend(str(PLUGINS))  # the `sleepy` agent's package, as the worker has it
    api.run(
        "d-sleepy",
        broker=docker_farm["broker"],
        db_url=docker_farm["db"],
        logs=docker_farm["logs"],
        backend="docker",
        repo="memkv_task",
        features=(1, 3),
        agent="sleepy",
        wait=False,
    )
    deadline = time.monotonic() + 120
    while len([c for c in containers(engine, experiment="d-sleepy") if c.status == "running"]) < 2:
        assert time.monotonic() < deadline, "the sleepy agents' containers did not start"
        time.sleep(0.5)
    time.sleep(2)
    worker = docker_farm["worker"]
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait()
    left = containers(engine, experiment="d-sleepy")
    assert len(left) == 2  # a killed worker cannot clean up
    removed = gc()
    assert {c.name for c in left} <= set(removed)
    assert containers(engine, experiment="d-sleepy") == []
    from cooperbench.sandbox.gc import _alive

    for c in containers(engine):  # whatever is left belongs to a live process (or another host)
        host, _, rest = c.labels.get("cooperbench.owner", "::").partition(":")
        pid, _, started = rest.partition(":")
        assert host != socket.gethostname() or (pid.isdigit() and _alive(int(pid), started)), c.name
