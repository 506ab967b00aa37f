"""The local sandbox backend: confinement under bubblewrap, time limits, and patch capture."""

import json
import shutil
import socket
import threading
from pathlib import Path

import pytest

from cooperbench.data.repocache import RepoCache
from cooperbench.errors import UserError
from cooperbench.pair import capture
from cooperbench.sandbox import Sandbox, get_backend
from cooperbench.sandbox.local import LocalBackend

from ..conftest import TaskRef

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


@pytest.fixture
def backend(tmp_path, upstream):
    bare, base, _ = upstream
    secret_dir = tmp_path / "gold"
    secret_dir.mkdir()
    (secret_dir / "feature.patch").write_text("the gold patch\n")
    be = LocalBackend(cache=RepoCache(tmp_path / "cache"), scratch=tmp_path / "sandboxes", hide=[secret_dir])
    return be, TaskRef(str(bare), base), secret_dir


@pytest.fixture
def sandbox(backend):
    be, task, _ = backend
    sb = be.create(task, labels={"pair": "lib_task/task1/f1-f2", "agent": "agent1"})
    yield sb
    sb.close()


def test_registry_knows_local_and_rejects_unknown():
    assert isinstance(get_backend("local"), LocalBackend)
    with pytest.raises(UserError, match="unknown sandbox backend 'nope'"):
        get_backend("nope")


def test_the_local_backend_is_made_once_per_process_and_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("COOPERBENCH_SCRATCH", str(tmp_path / "one"))
    first = get_backend("local", hide=[tmp_path / "secret"])
    assert get_backend("local", hide=[tmp_path / "secret"]) is first
    assert get_backend("local", hide=[tmp_path / "other"]) is not first  # other options: another one
    monkeypatch.setenv("COOPERBENCH_SCRATCH", str(tmp_path / "two"))  # a setting changed: made anew
    second = get_backend("local", hide=[tmp_path / "secret"])
    assert second is not first and second.scratch == tmp_path / "two" and first.scratch == tmp_path / "one"


def test_sandbox_speaks_the_protocol_and_cleans_up(sandbox):
    assert isinstance(sandbox, Sandbox)
    result = sandbox.exec("git rev-parse --abbrev-ref HEAD && cat lib.py", timeout=30)
    assert result.exit_code == 0 and result.output.startswith("main\n")
    sandbox.write_file(f"{sandbox.files_dir}/big.patch", b"x" * 3_000_000)
    assert sandbox.read_file(f"{sandbox.files_dir}/big.patch") == b"x" * 3_000_000
    with pytest.raises(ValueError):
        sandbox.write_file("/etc/evil", b"no")
    root = Path(sandbox.repo_dir).parent
    sandbox.close()
    assert not root.exists()


def test_timeout_kills_the_whole_command(sandbox):
    result = sandbox.exec("sleep 30 & sleep 30; echo never", timeout=1)
    assert result.timed_out and "never" not in result.output and result.duration < 10


def test_secrets_in_the_worker_environment_do_not_reach_commands(sandbox, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-should-not-leak")
    out = sandbox.exec("env", timeout=30).output
    assert "sk-test-should-not-leak" not in out and "PATH=" in out


@needs_bwrap
def test_confined_commands_have_no_network(sandbox):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    threading.Thread(target=lambda: server.accept(), daemon=True).start()
    probe = (
        f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('CONNECTED')\""
    )
    assert "CONNECTED" in sandbox.exec(probe, timeout=30, confined=False).output  # the server is real
    confined = sandbox.exec(probe, timeout=30)
    assert confined.exit_code != 0 and "CONNECTED" not in confined.output
    server.close()


@needs_bwrap
def test_confined_commands_write_only_their_working_copy_and_cannot_see_gold(backend, sandbox, tmp_path):
    _, _, secret_dir = backend
    outside = tmp_path / "outside.txt"
    result = sandbox.exec(
        f"echo hi > {outside}; echo ok > inside.txt; cat {secret_dir}/feature.patch; ls {tmp_path / 'cache'}",
        timeout=30,
    )
    assert not outside.exists()
    assert (Path(sandbox.repo_dir) / "inside.txt").read_text() == "ok\n"
    assert "the gold patch" not in result.output
    assert "mirrors" not in result.output and "bases" not in result.output


def test_unconfined_by_choice_a_warning_is_given_once(backend, monkeypatch, caplog):
    import cooperbench.sandbox.local as local

    monkeypatch.setenv("COOPERBENCH_NO_BWRAP", "1")
    monkeypatch.setattr(local, "_warned", False)
    be, task, _ = backend
    with caplog.at_level("WARNING"):
        LocalBackend(cache=be.cache, scratch=be.scratch)
        LocalBackend(cache=be.cache, scratch=be.scratch)
    assert sum("run agent commands unconfined" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize(
    "mischief",
    [
        "git add -A && git commit -qm work",
        "git add -A && git commit -qm work && git checkout -q -b elsewhere && git reset -q --hard HEAD~1",
        "rm -rf .git",
        "git stash -u -q || true",
    ],
)
def test_capture_is_the_real_change_whatever_the_agent_did_to_git(sandbox, mischief):
    capture.prepare(sandbox)
    sandbox.exec(
        "printf 'def f():\\n    return 3\\n' > lib.py && mkdir -p pkg && echo 'x = 1' > pkg/new.py && "
        "printf '\\x00\\x01binary' > blob.bin && mkdir -p __pycache__ && echo junk > __pycache__/c.pyc",
        timeout=30,
    )
    before = capture.capture(sandbox)
    sandbox.exec(mischief, timeout=30)
    if "stash" in mischief or "reset" in mischief:
        # the working tree itself changed back: the capture must say so, not what git history says
        after = capture.capture(sandbox)
        assert "return 3" not in after
        return
    after = capture.capture(sandbox)
    assert after == before
    assert "+    return 3" in after and "pkg/new.py" in after and "blob.bin" in after and "GIT binary patch" in after
    assert "__pycache__" not in after


def test_capture_of_untouched_copy_is_empty(sandbox):
    capture.prepare(sandbox)
    assert capture.capture(sandbox) == ""


@needs_bwrap
def test_the_base_snapshot_is_shown_read_only_not_copied_and_an_agent_cannot_change_it(backend, sandbox):
    be, task, _ = backend
    capture.prepare(sandbox)
    shown = Path(sandbox.files_dir) / "base.git"
    assert shown.is_dir() and not any(shown.iterdir())  # on the host: an empty mount point, nothing copied
    snapshot = be.cache.snapshot(task.repo_url, task.base_commit)
    before = sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*"))
    attack = sandbox.exec(
        f"ls {shown}/objects && (echo evil > {shown}/objects/planted || true) && "
        f"(rm -rf {shown}/objects/pack || true) && (echo '*' > {shown}/info/exclude || true); "
        "mkdir -p ~/.config/git && echo '*.py' > ~/.config/git/ignore && echo 'x = 2' > added.py",
        timeout=30,
    )
    assert "pack" in attack.output  # the command sees the snapshot
    assert sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*")) == before  # and cannot touch it
    patch = capture.capture(sandbox)
    assert "added.py" in patch and "+x = 2" in patch  # the agent's own ignore files hide nothing


def test_a_fork_copies_the_harness_tree_and_is_refused_once_a_command_ran(sandbox):
    from cooperbench.sandbox import SandboxError

    merged = sandbox.exec("echo merged >> lib.py && git commit -qam merged", timeout=30, confined=False)
    assert merged.exit_code == 0, merged.output
    fork = sandbox.fork()
    try:
        assert fork.root != sandbox.root and fork.root.parent == sandbox.root.parent
        assert fork.exec("git log -1 --format=%s && tail -1 lib.py", timeout=30).output == "merged\nmerged\n"
        assert fork.exec("echo changed > lib.py && id -u", timeout=30).exit_code == 0
        assert Path(sandbox.repo_dir, "lib.py").read_text().endswith("merged\n")  # the copy is its own
        if fork.use_bwrap:
            assert fork.uid != sandbox.uid  # its own user: nothing of one run reaches the other's files
        with pytest.raises(SandboxError, match="no command has run"):
            fork.fork()  # its tree is a command's now, never copied as the harness's
    finally:
        fork.close()
    assert not fork.root.exists()


def test_the_working_copy_lies_in_an_agent_workspace_as_published_runners_require(dataset_copy, tmp_path):
    """jinja's and outlines' runners refuse to run ("Repository safety check failed!") unless the
    repository's parent folder is named agent_workspace: a bundled task given that check passes."""
    from ..conftest import run_cli

    runner = dataset_copy / "textkit_task" / "task0" / "run_tests.sh"
    lines = runner.read_text().splitlines()
    check = (
        'if [ "$(basename "$(dirname "$(realpath "$1")")")" != agent_workspace ]; then '
        'echo "Repository safety check failed!"; exit 1; fi'
    )
    runner.write_text("\n".join([lines[0], check, *lines[1:]]) + "\n")
    env = {"COOPERBENCH_DB_URL": f"sqlite:///{tmp_path / 'r.db'}", "COOPERBENCH_LOGS": str(tmp_path / "logs")}
    proc = run_cli("run", "-n", "workspace", "-a", "gold", "--setting", "solo", "--dataset", str(dataset_copy),
                   "-r", "textkit_task", "-f", "1,2", "--json", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (rec,) = json.loads(proc.stdout)
    assert rec["both_passed"] and rec["error"] is None, rec
