"""Attacks on the harness: code an agent wrote plants git hooks, filters, attributes and a
configuration, or swaps its working copy for a link, hoping the harness (root, with the
worker's environment and network) runs them when it captures a patch or evaluates the
next feature. Each planted command would leave a mark in a folder of the host."""

import textwrap
from pathlib import Path

from cooperbench.data.dataset import Dataset
from cooperbench.data.repocache import RepoCache, git
from cooperbench.grading.merge_and_test import merge_and_test
from cooperbench.pair import capture

from ..conftest import DATASET
from .conftest import KEY


def _plant(marks: Path) -> str:
    """A shell script that plants everything git might run, each leaving a mark in `marks`."""
    hooks = ["pre-commit", "post-checkout", "post-merge", "post-commit", "reference-transaction", "post-index-change"]
    lines = [
        "set -e",
        "cd $(git rev-parse --show-toplevel)",
        "mkdir -p .git/hooks .git/info",
        *[f"printf '#!/bin/sh\\ntouch {marks}/hook-{h}\\n' > .git/hooks/{h} && chmod +x .git/hooks/{h}" for h in hooks],
        f"git config filter.pwn.clean 'touch {marks}/filter-clean; cat'",
        f"git config filter.pwn.smudge 'touch {marks}/filter-smudge; cat'",
        "git config filter.pwn.required true",
        f"git config core.fsmonitor 'touch {marks}/fsmonitor; true'",
        f"git config diff.external 'touch {marks}/diff-external'",
        "echo '* filter=pwn' > .git/info/attributes",
        "echo '* filter=pwn diff=pwn' > .gitattributes",
        f"git config --global filter.pwn.clean 'touch {marks}/global-clean; cat'",
        f"git config --global core.fsmonitor 'touch {marks}/global-fsmonitor; true'",
    ]
    return "\n".join(lines)


def test_capture_runs_nothing_an_agent_planted_and_follows_no_link_out(world):
    sandbox = world.backend.create(world.task, labels={"pair": "p", "agent": "agent1"})
    try:
        capture.prepare(sandbox)
        assert sandbox.exec("echo 'def g():\n    return 3' >> lib.py", timeout=30).exit_code == 0
        planted = sandbox.exec(_plant(world.marks), timeout=30)
        assert planted.exit_code == 0, planted.output
        patch = capture.capture(sandbox)
        assert "+    return 3" in patch and "+* filter=pwn diff=pwn" in patch  # the change, and the plant as data
        assert sorted(p.name for p in world.marks.iterdir()) == []

        # the working copy swapped for a link to the worker's folder: the capture, confined, finds nothing there
        swap = f"mv repo repo.old && ln -s {world.workdir} repo"
        sandbox.exec(swap, timeout=30, cwd=str(Path(sandbox.repo_dir).parent))
        try:
            stolen = capture.capture(sandbox)
        except capture.CaptureError:
            stolen = ""
        assert KEY not in stolen
        sandbox.exec("rm repo && mv repo.old repo", timeout=30, cwd=str(Path(sandbox.repo_dir).parent))
        # links inside it to the worker's .env: captured as links, never as the file's content
        sandbox.exec(f"ln -s {world.workdir}/.env env-link && ln -s {world.workdir} dir-link", timeout=30)
        stolen = capture.capture(sandbox)
        assert "env-link" in stolen and KEY not in stolen
        assert sorted(p.name for p in world.marks.iterdir()) == []
    finally:
        sandbox.close()


def _attacking_patch(task, feature: int, world) -> str:
    """The gold patch of `feature` plus code that runs when the tests import the package: it
    plants hooks and filters for the harness and tries to reach what an agent must not."""
    work = RepoCache(world.outside.parent / "patch-cache").checkout(
        task.repo_url, task.base_commit, world.outside / "w"
    )
    git("apply", "-", cwd=work, input=task.feature(feature).gold_patch)
    package = work / "minicalc"
    attack = textwrap.dedent(
        f"""
        import os, socket, subprocess
        _found = []
        def _try(name, attempt):
            try:
                attempt()
                _found.append(name)
            except Exception:
                pass
        _try("gold", lambda: open({str(world.gold)!r}).read())
        _try("dotenv", lambda: open({str(world.workdir / ".env")!r}).read())
        _try("redis", lambda: socket.create_connection(("127.0.0.1", 6379), 2))
        _try("write", lambda: open({str(world.outside / "written")!r}, "w").write("x"))
        subprocess.run(["bash", "-c", {_plant(world.marks)!r}], capture_output=True)
        if _found:
            raise RuntimeError("BREACH " + ",".join(_found))
        raise RuntimeError("ATTACK-RAN, every attempt blocked")  # shows in the test output
        """
    )
    (package / "_attack.py").write_text(attack)
    module = package / "evaluator.py"  # changed by the feature's gold patch, imported by every test
    module.write_text(module.read_text() + "\nfrom . import _attack  # noqa\n")
    git("add", "-A", cwd=work)
    patch = git("diff", "--cached", "--binary", cwd=work).stdout
    git("reset", "-q", "--hard", cwd=work)
    import shutil

    shutil.rmtree(work)
    return patch


def test_code_run_by_the_tests_cannot_reach_out_nor_plant_for_the_next_feature(world):
    task = Dataset(DATASET).task("minicalc_task", 1)
    patches = {"agent1": _attacking_patch(task, 1, world), "agent2": task.feature(3).gold_patch}
    outcome = merge_and_test(task, [1, 3], patches, world.backend, labels={"pair": "attack"})
    outputs = "\n".join(f.output for f in outcome.features)
    assert "BREACH" not in outputs
    assert outcome.merge_status == "clean"
    assert all("ATTACK-RAN" in f.output for f in outcome.features), outputs[-2000:]
    assert sorted(p.name for p in world.marks.iterdir()) == []
    assert not (world.outside / "written").exists()
