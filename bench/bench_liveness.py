"""How long a coop agent takes to learn that its teammate's worker died, for a few heartbeat TTLs.

    python bench/bench_liveness.py [--redis redis://127.0.0.1:6379/13] [--ttl 1.5 3 10] [--repeat 3]

For each TTL: agent2's heartbeat runs in a process of its own, agent1 waits for a message
(as `send_message --wait` does), agent2's process is killed with SIGKILL, and the time until
agent1's wait returns with the "lost" notice is measured. Also the Redis cost of one
heartbeat round. Uses (and leaves) keys under `cooperbench:bench-liveness-*` only.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import logging  # noqa: E402

from cooperbench.team.liveness import Watch  # noqa: E402
from cooperbench.team.mailbox import Mailbox  # noqa: E402

TEAMMATE = """
import sys, time
from cooperbench.team.liveness import Watch
from cooperbench.team.mailbox import Mailbox
Watch(Mailbox(sys.argv[1], sys.argv[2], "p"), "agent2", ["agent1"], notify=True, ttl=float(sys.argv[3])).start()
print("alive", flush=True)
time.sleep(3600)
"""


def detection(url: str, ttl: float) -> float:
    box = Mailbox(url, f"bench-liveness-{uuid.uuid4().hex[:8]}", "p")
    me = Watch(box, "agent1", ["agent2"], notify=True, ttl=ttl).start()
    mate = subprocess.Popen(
        [sys.executable, "-c", TEAMMATE, url, box.prefix.split(":")[1], str(ttl)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        mate.stdout.readline()
        time.sleep(ttl)  # agent1's watch has seen agent2 running
        mate.send_signal(signal.SIGKILL)
        mate.wait()
        killed = time.monotonic()
        got = box.for_agent("agent1").wait(10 * ttl + 30)
        took = time.monotonic() - killed
        assert got and got[0].from_farm, "no notice came"
        return took
    finally:
        if mate.poll() is None:
            mate.kill()
        me.stop(finished=True)
        box.reset(["agent1", "agent2"])


def round_cost(url: str, rounds: int = 2000) -> float:
    box = Mailbox(url, f"bench-liveness-{uuid.uuid4().hex[:8]}", "p")
    me = Watch(box, "agent1", ["agent2"], notify=False, ttl=30)
    t0 = time.perf_counter()
    for _ in range(rounds):
        me.beat()
    took = (time.perf_counter() - t0) / rounds
    box.reset(["agent1", "agent2"])
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--ttl", type=float, nargs="+", default=[1.5, 3.0, 10.0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the watch logs each loss; the figures are what counts here
    print(f"one heartbeat round (a SET, and two EXISTS per teammate, pipelined): {round_cost(args.redis) * 1e3:.3f} ms")
    for ttl in args.ttl:
        samples = [detection(args.redis, ttl) for _ in range(args.repeat)]
        print(
            f"TTL {ttl:g} s: teammate told {statistics.median(samples):.2f} s after the kill (median of "
            f"{len(samples)}; min {min(samples):.2f}, max {max(samples):.2f})"
        )


if __name__ == "__main__":
    main()
