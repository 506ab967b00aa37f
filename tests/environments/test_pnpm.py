"""The published react-hook-form task 85 on the local backend, offline, with the Node and pnpm the farm provides.

Its runner installs Node with `sudo apt-get` and pnpm with npm when they are missing, then
runs `pnpm install` (about 950 packages) and `pnpm test <file>` (jest). The farm provides Node
at least 22 (its image) and pnpm 9 (its lockfile's `lockfileVersion: '9.0'`; today's pnpm
refuses the install), and the pnpm store is prepared once with network. The upstream is a
shallow repository holding only the base commit. A sample of pairs covers every feature; the
tests run in file order, and the first prepares.
"""

from __future__ import annotations

import json

import pytest

from cooperbench.data.dataset import Dataset
from cooperbench.data.repocache import RepoCache
from cooperbench.environments import versions

from .test_published import PUBLISHED, cli, covering_pairs, published  # noqa: F401 - the fixture

RHF = "react_hook_form_task"
pytestmark = pytest.mark.skipif(not PUBLISHED.is_dir(), reason="../shared/published (the real tasks) is not here")


@pytest.mark.timeout(1800)
def test_env_prepare_readies_react_hook_form_with_node_and_pnpm_9(published, tmp_path):  # noqa: F811
    proc = cli("env", "prepare", "--dataset", str(published), "-r", RHF, "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (state,) = json.loads(proc.stdout)
    assert state["state"] == "ready" and state["toolchains"] == ["npm"], state
    assert versions.parse(state["versions"]["node"]) >= (22,) and versions.parse(state["versions"]["pnpm"])[0] == 9
    assert state["size_bytes"] > 100 * 2**20  # the pnpm store


def test_the_node_and_pnpm_a_task_needs_are_read_from_its_files(published):  # noqa: F811
    task = Dataset(published).task(RHF, 85)
    base = RepoCache().base(task.repo_url, task.base_commit)
    node, pnpm = versions.node(task, base), versions.pnpm(task, base)
    assert node.spec() == ">=22" and any("package.json engines: 18" in why for why in node.why)
    assert pnpm.spec() == ">=9,<10" and pnpm.spec(" ") == ">=9 <10" and not pnpm.admits("11.0.0")


def test_gold_solo_passes_react_hook_form_pairs_that_cover_every_feature(published, tmp_path):  # noqa: F811
    dataset = tmp_path / "dataset"
    import shutil

    shutil.copytree(published / RHF, dataset / RHF)
    (dataset / "subsets").mkdir()
    cover = [{"repo": RHF, "task_id": 85, "pairs": covering_pairs([1, 2, 3, 4, 5])}]
    (dataset / "subsets" / "cover.json").write_text(json.dumps({"name": "cover", "tasks": cover}))
    proc = cli("run", "-n", "rhf-gold", "-a", "gold", "--setting", "solo", "--dataset", str(dataset),
               "-s", "cover", "--json", tmp_path=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = json.loads(proc.stdout)
    assert len(records) == 3 and all(r["both_passed"] and r["error_kind"] is None for r in records), records
    assert {int(n) for r in records for n in r["feature_passed"]} == {1, 2, 3, 4, 5}


def test_gold_coop_matches_conflicts_and_nop_passes_none(published, tmp_path):  # noqa: F811
    selection = ("--dataset", str(published), "-r", RHF, "-f", "1,2")
    (expected,) = json.loads(cli("dataset", "conflicts", *selection, "--json", tmp_path=tmp_path).stdout)
    proc = cli("run", "-n", "rhf-coop", "-a", "gold", *selection, "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = json.loads(proc.stdout)
    assert rec["merge_status"] == expected["status"] and rec["error_kind"] is None, (rec, expected)
    assert rec["clean_success"] == (expected["status"] == "clean")
    proc = cli("run", "-n", "rhf-nop", "-a", "nop", "--setting", "solo", *selection, "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = json.loads(proc.stdout)
    assert not rec["both_passed"] and rec["error_kind"] is None  # its tests ran and failed: scored


def test_mini_swe_agent_runs_pnpm_test_offline_in_its_sandbox(published, tmp_path, monkeypatch):  # noqa: F811
    from .scripted_agent import run_tests_as_agent

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-rhf")
    command = "pnpm install >/dev/null 2>&1; pnpm test src/__tests__/useForm.test.tsx 2>&1 | tail -6"
    run = run_tests_as_agent(published, RHF, 85, command, tmp_path)
    assert "Tests:" in run.observation and " passed" in run.observation and "failed" not in run.observation
    assert "src/" in run.patch
