"""Attacks from a confined command of the local backend, run as root (as CI and most workers run).

Each attack prints BREACH only if it worked. Where running it is harmless, the same command
run unconfined (as the worker) is the control: it must work there, so a blocked attack is
blocked by the sandbox and not by a mistake in the attack."""

import os
import shlex

import pytest

from .conftest import KEY

PY = "python3 -c "


def _connect_tcp(port: int) -> str:
    code = f"import socket; socket.create_connection(('127.0.0.1', {port}), 2); print('BREACH')"
    return PY + shlex.quote(code)


def _connect_unix(path: str) -> str:
    code = f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({path!r}); print('BREACH')"
    return PY + shlex.quote(code)


PG_SOCKET = "/var/run/postgresql/.s.PGSQL.5432"
PODMAN_SOCKET = "/run/cooperbench-podman.sock"


def attacks(world, other):
    """name -> (command, whether the unconfined control is harmless and must succeed)."""
    return {
        "read the gold patch": (f"cat {world.gold} && echo BREACH", True),
        "read the worker's .env": (f"cat {world.workdir}/.env && echo BREACH", True),
        "read the results database": (f"cat {world.database} && echo BREACH", True),
        "read another pair's copy": (f"cat {other.repo_dir}/lib.py && echo BREACH", True),
        "write another pair's copy": (f"echo x >> {other.repo_dir}/lib.py && echo BREACH", False),
        "read a file in the worker's home": (f"cat {world.home_file} && echo BREACH", True),
        "read /etc/shadow": ("head -c1 /etc/shadow >/dev/null && echo BREACH", True),
        "read the worker's environment": (f"grep -a -q PATH= /proc/{os.getpid()}/environ && echo BREACH", True),
        "see the worker's processes": ("grep -als 'py[t]est' /proc/[0-9]*/cmdline | grep -q . && echo BREACH", True),
        "write outside the copy": (f"touch {world.outside}/x && echo BREACH", True),
        "write the harness folder": ("touch $FILES/planted && echo BREACH", True),
        "write the system": ("touch /usr/planted && echo BREACH", False),
        "reach Redis on loopback": (_connect_tcp(6379), True),
        "reach PostgreSQL on loopback": (_connect_tcp(5432), True),
        "reach PostgreSQL's socket": (_connect_unix(PG_SOCKET), os.path.exists(PG_SOCKET)),
        "reach the container engine": (_connect_unix(PODMAN_SOCKET), os.path.exists(PODMAN_SOCKET)),
        "remount the system writable": ("mount -o remount,rw /usr && echo BREACH", False),
        "unmount /proc": ("umount /proc && echo BREACH", False),
        "unmount through a user namespace": ("unshare -Urm umount -l /usr && echo BREACH", False),
        "mount over the copy": ("mount -t tmpfs none $HOME && echo BREACH", False),
        "become root again": ("su -c true root </dev/null && echo BREACH", False),
        "send a signal to the worker": (f"kill -0 {os.getpid()} && echo BREACH", False),
    }


@pytest.fixture
def two(world):
    mine = world.backend.create(world.task, labels={"pair": "lib_task/task1/f1-f2", "agent": "agent1"})
    other = world.backend.create(world.task, labels={"pair": "lib_task/task1/f3-f4", "agent": "agent1"})
    yield mine, other
    mine.close()
    other.close()


def test_every_attack_from_a_confined_command_is_blocked(world, two):
    mine, other = two
    assert mine.exec("echo ok > mine.txt && cat mine.txt", timeout=30).output.strip() == "ok"  # it does run
    breaches, controls = [], []
    for name, (command, control) in attacks(world, other).items():
        command = command.replace("$FILES", mine.files_dir)
        result = mine.exec(command, timeout=30)
        if "BREACH" in result.output:
            breaches.append(name)
        if control and "BREACH" not in mine.exec(command, timeout=30, confined=False).output:
            controls.append(name)
    assert breaches == [], f"attacks that worked from the sandbox: {breaches}"
    assert controls == [], f"attacks that do not even work unconfined (a broken attack): {controls}"


def test_commands_run_as_nobody_on_the_host_with_no_capability(two):
    mine, _ = two
    out = mine.exec("id -u; id -G; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status", timeout=30).output
    uid, groups, *caps = out.split("\n")
    assert int(uid) >= 1_000_000 and groups.split() == [uid]
    assert sorted(caps[:4]) == [
        "CapBnd:\t0000000000000000",
        "CapEff:\t0000000000000000",
        "CapPrm:\t0000000000000000",
        "NoNewPrivs:\t1",
    ]


def test_a_key_in_the_worker_never_reaches_a_command(two):
    mine, _ = two
    assert KEY not in mine.exec("env; cat /proc/1/environ", timeout=30).output


def test_the_teammates_share_their_remote_and_nobody_else_reaches_it(world):
    """Per-pair remotes: each pair's sandboxes see and push their own remote, never another pair's."""
    from cooperbench.data.repocache import git

    remotes = {}
    for pair in ("f1-f2", "f3-f4"):
        remotes[pair] = world.outside.parent / "remotes" / "exp" / f"{pair}.git"  # readable by anyone
        remotes[pair].parent.mkdir(parents=True, exist_ok=True)
        git("clone", "-q", "--bare", world.task.repo_url, str(remotes[pair]))
    create = world.backend.create
    a1 = create(world.task, labels={"pair": "f1-f2", "agent": "agent1"}, team_remote=str(remotes["f1-f2"]))
    a2 = create(world.task, labels={"pair": "f1-f2", "agent": "agent2"}, team_remote=str(remotes["f1-f2"]))
    b1 = create(world.task, labels={"pair": "f3-f4", "agent": "agent1"}, team_remote=str(remotes["f3-f4"]))
    try:
        push = "git checkout -qb mine && echo x > x.txt && git add x.txt && git commit -qm x && git push -q team mine"
        assert a1.exec(push, timeout=60).exit_code == 0
        assert "mine" in a2.exec("git fetch -q team && git branch -r", timeout=60).output
        other = remotes["f1-f2"]
        assert "BREACH" not in b1.exec(f"git ls-remote {other} && echo BREACH", timeout=60).output
        assert "BREACH" not in b1.exec(f"git push -q {other} HEAD:stolen && echo BREACH", timeout=60).output
        assert "BREACH" not in b1.exec(f"ls {other}/objects && echo BREACH", timeout=60).output
        assert "BREACH" in b1.exec(f"ls {other}/objects && echo BREACH", timeout=60, confined=False).output
    finally:
        for sb in (a1, a2, b1):
            sb.close()
