"""The evaluation's patch step: every agent's patch applied on its own branch in one harness command.

Real git in a real local sandbox: each patch's status (applied, skipped, failed with git's own
reason, rejected before it is written) and where HEAD is afterwards, which is what the merge
that follows relies on (a lone applied branch that HEAD is on is the merged tree as it is).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cooperbench.grading.merge_and_test import apply_branches, merge_branches

GOOD = (
    "diff --git a/lib.py b/lib.py\n--- a/lib.py\n+++ b/lib.py\n"
    "@@ -1,2 +1,2 @@\n def f():\n-    return 2\n+    return 3\n"
)
BROKEN = GOOD.replace("return 2", "return 7")
ESCAPE = (
    "diff --git a/../victim/pwned b/../victim/pwned\nnew file mode 100644\n"
    "--- /dev/null\n+++ b/../victim/pwned\n@@ -0,0 +1 @@\n+x\n"
)


@pytest.fixture
def sandbox(eval_sandbox):
    return eval_sandbox


def _git(sb, command: str) -> str:
    result = sb.exec(f"git {command}", timeout=30, confined=False)
    assert result.exit_code == 0, result.output
    return result.output.strip()


def test_each_patch_gets_its_own_status_and_head_follows_the_last_tried(sandbox):
    base = _git(sandbox, "rev-parse HEAD")
    status, head = apply_branches(sandbox, {"agent1": BROKEN, "agent2": GOOD, "agent3": "  \n", "agent4": ESCAPE})
    assert status["agent2"] == "applied" and status["agent3"] == "skipped"
    assert status["agent1"] == "failed" and "does not apply" in status["agent1"].reason
    assert "patch does not apply" in status["agent1"].reason  # git's own words, from its section of the output
    assert status["agent4"] == "failed" and "rejected" in status["agent4"].reason
    assert not (Path(sandbox.files_dir) / "agent4.patch").exists()  # a rejected patch is never written
    assert list(status) == ["agent1", "agent2", "agent3", "agent4"]
    assert head == "cb-agent2" == _git(sandbox, "rev-parse --abbrev-ref HEAD")
    assert _git(sandbox, "rev-parse cb-base") == base  # made at the base, before any patch
    assert "return 3" in (Path(sandbox.repo_dir) / "lib.py").read_text()
    assert _git(sandbox, "status --porcelain") == ""

    # the lone applied branch is the merged tree: nothing is run, HEAD stays where it is
    assert merge_branches(sandbox, ["agent2"], head) == ("clean", "naive", True)
    assert _git(sandbox, "rev-parse --abbrev-ref HEAD") == "cb-agent2"


def test_a_last_patch_that_fails_leaves_head_on_the_base(sandbox):
    status, head = apply_branches(sandbox, {"agent1": GOOD, "agent2": BROKEN})
    assert (status["agent1"], status["agent2"]) == ("applied", "failed")
    assert head == "cb-base" and _git(sandbox, "rev-parse --abbrev-ref HEAD") == "cb-base"
    assert _git(sandbox, "status --porcelain") == ""  # the failed attempt left nothing behind
    # the merge then checks the applied branch out as cb-merged
    assert merge_branches(sandbox, ["agent1"], head) == ("clean", "naive", True)
    assert _git(sandbox, "rev-parse --abbrev-ref HEAD") == "cb-merged"
    assert "return 3" in (Path(sandbox.repo_dir) / "lib.py").read_text()


def test_no_patch_to_try_still_names_the_base(sandbox):
    status, head = apply_branches(sandbox, {"agent1": "", "agent2": ""})
    assert status == {"agent1": "skipped", "agent2": "skipped"} and head is None
    assert merge_branches(sandbox, [], head) == ("clean", "naive", True)
    assert _git(sandbox, "rev-parse cb-merged") == _git(sandbox, "rev-parse cb-base")


def test_an_existing_base_branch_is_kept(sandbox):
    """Called again in the same sandbox (as the property tests do), cb-base stays where it is."""
    base = _git(sandbox, "rev-parse HEAD")
    apply_branches(sandbox, {"agent1": GOOD})
    status, head = apply_branches(sandbox, {"agent2": GOOD})
    assert status == {"agent2": "applied"} and head == "cb-agent2"
    assert _git(sandbox, "rev-parse cb-base") == base
    assert _git(sandbox, "rev-parse cb-agent2~1") == base


def test_a_patch_whose_failure_floods_the_output_is_still_the_agents_failure(sandbox):
    """git's words on two failing 5 MB patches (about 5 MB of errors each) exceed what a command's output
    keeps (its start and its end, 4 MiB): uncut, the first verdict would fall in the dropped middle.
    They are cut to their end, so every verdict survives: each patch fails as its agent's, never as a
    harness failure (an infrastructure error would be retried and left unscored)."""
    flood = "".join(
        f"diff --git a/d/f{i} b/d/f{i}\n--- a/d/f{i}\n+++ b/d/f{i}\n@@ -1 +1 @@\n-x\n+y\n" for i in range(60_000)
    )
    status, head = apply_branches(sandbox, {"agent1": flood, "agent2": flood, "agent3": GOOD})
    for agent in ("agent1", "agent2"):
        assert status[agent] == "failed" and "does not exist in index" in status[agent].reason
    assert status["agent3"] == "applied" and head == "cb-agent3"
