"""Exhausting a local sandbox: each limit ends the command as the command's own outcome, names
the limit, and leaves the worker (this test process) and the sandbox working."""

import pytest

from cooperbench.sandbox import MAX_OUTPUT
from cooperbench.sandbox.local import LocalBackend


@pytest.fixture
def tight(world, monkeypatch):
    for key, value in {"MEMORY_MB": 256, "PROCESSES": 64, "CPU_SECONDS": 2, "FILE_MB": 10, "DISK_MB": 40}.items():
        monkeypatch.setenv(f"COOPERBENCH_SANDBOX_{key}", str(value))
    backend = LocalBackend(cache=world.backend.cache)
    sandbox = backend.create(world.task, labels={"pair": "p", "agent": "agent1"})
    yield sandbox
    sandbox.close()


@pytest.mark.parametrize(
    ("limit", "command"),
    [
        ("memory", "python3 -c 'x = bytearray(2 * 1024**3)'"),
        ("processes", "for i in $(seq 200); do sleep 5 & done; wait"),
        ("cpu", "python3 -c 'while True: pass'"),
        ("file", "head -c 20M /dev/zero > big.bin"),
        ("disk", "for i in 1 2 3 4 5; do head -c 9M /dev/zero > f$i.bin; done"),
    ],
)
def test_each_limit_ends_the_command_and_is_named(tight, limit, command):
    result = tight.exec(command, timeout=60)
    assert result.exit_code != 0 and result.limit == limit, (result.exit_code, result.limit, result.output[-500:])
    assert f"{limit} limit" in result.output
    tight.exec("rm -f *.bin", timeout=30)
    assert tight.exec("echo still here", timeout=30).output.strip() == "still here"


def test_a_fork_bomb_ends_with_its_command(tight):
    """The bomb runs into the process limit, and its processes die with its command (their own namespace)."""
    result = tight.exec(":(){ :|:& };:; sleep 2", timeout=10)
    assert result.limit == "processes", result.output[-300:]
    assert tight.exec("echo still here; ps -e --no-headers | wc -l", timeout=30).output.split() == [
        "still",
        "here",
        "4",
    ]


def test_output_is_read_bounded(tight):
    result = tight.exec("head -c 200M /dev/zero | tr '\\0' x", timeout=60)
    assert result.exit_code == 0 and len(result.output) <= MAX_OUTPUT + 100
    assert "[output truncated]" in result.output
