"""A synthetic scale task: one task whose N features each add one file, with tests that cost nothing.

    python bench/scale_task.py OUT [--features 32]      # writes OUT/scale_task/task0/ (N*(N-1)/2 pairs)

The task is in the published CooperBench format (Dockerfile naming a bundled upstream and
its base commit, `run_tests.sh`, `featureN/{feature.md,feature.patch,tests.patch}`), so the
farm runs it like any other. Feature N's gold patch adds `features/fN.txt`; its tests patch
adds `tests/test_fN.txt`; `run_tests.sh` applies the patches and checks that the feature's
file is there, printing a pytest-style summary, with no interpreter started: what a pair
costs is then the farm's own overhead (sandboxes, merges, bookkeeping), not its tests.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

REPO, TASK_ID = "scale_task", 0

RUN_TESTS = r"""#!/usr/bin/env bash
# run_tests.sh <repo> <tests.patch> [feature.patch]: apply, then check the feature's file is there.
set -u
repo=$1; tests=$2; feature=${3:-}
cd "$repo" || { echo "no repository" >&2; exit 2; }
if [ -n "$feature" ]; then git apply "$feature" || { echo "feature patch does not apply" >&2; exit 2; }; fi
git apply "$tests" || { echo "tests patch does not apply" >&2; exit 2; }
n=$(sed -n 's#^+++ b/tests/test_f\([0-9]*\)\.txt$#\1#p' "$tests" | head -n 1)
if [ -n "$n" ] && [ -f "features/f$n.txt" ]; then
    echo "tests/test_f$n.txt::test_feature PASSED"; echo "===== 1 passed in 0.00s ====="; exit 0
fi
echo "tests/test_f$n.txt::test_feature FAILED"; echo "===== 1 failed in 0.00s ====="; exit 1
"""


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _new_file_patch(path: str, text: str) -> str:
    lines = text.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


def make(root: Path, features: int = 32) -> Path:
    """Write the task under `root` (a dataset folder); returns the task folder."""
    task = Path(root) / REPO / f"task{TASK_ID}"
    task.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "upstream"
        work.mkdir()
        _git(work, "init", "-q", "-b", "main")
        (work / "README.md").write_text("A synthetic repository for scale runs.\n")
        (work / "features").mkdir()
        (work / "features" / ".keep").write_text("")
        _git(work, "add", "-A")
        _git(work, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "base")
        base = _git(work, "rev-parse", "HEAD")
        bundle = task / "upstream.bundle"
        bundle.unlink(missing_ok=True)
        _git(work, "bundle", "create", "-q", str(bundle), "--all")
    (task / "Dockerfile").write_text(
        "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\nCOPY upstream.bundle /tmp/upstream.bundle\n"
        f"RUN git clone /tmp/upstream.bundle /workspace/repo && cd /workspace/repo && git checkout {base}\n"
        "WORKDIR /workspace/repo\n"
    )
    (task / "run_tests.sh").write_text(RUN_TESTS)
    (task / "run_tests.sh").chmod(0o755)
    for n in range(1, features + 1):
        folder = task / f"feature{n}"
        folder.mkdir(exist_ok=True)
        (folder / "feature.md").write_text(f"Add the file features/f{n}.txt saying which feature it is.\n")
        (folder / "feature.patch").write_text(_new_file_patch(f"features/f{n}.txt", f"feature {n}"))
        (folder / "tests.patch").write_text(_new_file_patch(f"tests/test_f{n}.txt", f"checks feature {n}"))
    return task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the dataset folder to write into")
    parser.add_argument("--features", type=int, default=32)
    args = parser.parse_args()
    task = make(args.out, args.features)
    print(f"{task}: {args.features} features, {args.features * (args.features - 1) // 2} pairs")


if __name__ == "__main__":
    main()
