"""The real published CooperBench tasks (pallets/click, openai/tiktoken) run offline in prepared environments.

The tasks come unchanged from `../shared/published/`, their upstreams from its git bundles.
Agents and evaluations get no network: click's runner (`uv venv`, `uv pip install`) works
from the environment prepared once in this session; tiktoken's runner (`sudo apt-get`, pip,
crates) cannot be prepared here, and its pairs are infrastructure errors naming the cause.
The tests run in file order: the first prepares the environments the others use.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from cooperbench.data.dataset import Dataset
from cooperbench.data.repocache import RepoCache
from cooperbench.environments import prepared
from cooperbench.sandbox import get_backend

from ..conftest import DATASET, ROOT, run_cli

PUBLISHED = ROOT.parent / "shared" / "published"
CLICK = "pallets_click_task"
pytestmark = pytest.mark.skipif(not PUBLISHED.is_dir(), reason="../shared/published (the real tasks) is not here")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The published dataset, with git pointed at the bundled upstreams for this module's processes."""
    out = tmp_path_factory.mktemp("published") / "upstreams.gitconfig"
    gitconfig = subprocess.run(
        ["bash", str(PUBLISHED / "use-upstreams.sh"), str(out)], check=True, capture_output=True, text=True
    ).stdout.strip()
    saved = os.environ.get("GIT_CONFIG_GLOBAL")
    os.environ["GIT_CONFIG_GLOBAL"] = gitconfig
    yield PUBLISHED / "dataset"
    if saved is None:
        os.environ.pop("GIT_CONFIG_GLOBAL", None)
    else:
        os.environ["GIT_CONFIG_GLOBAL"] = saved


def cli(*args, tmp_path, timeout=1800):
    env = {"COOPERBENCH_DB_URL": f"sqlite:///{tmp_path / 'results.db'}", "COOPERBENCH_LOGS": str(tmp_path / "logs")}
    return run_cli(*args, env=env, timeout=timeout)


def tree_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        digest.update(str(p.relative_to(path)).encode())
        if p.is_file() and not p.is_symlink():
            digest.update(p.read_bytes())
    return digest.hexdigest()


@pytest.mark.timeout(1800)  # the three click environments, prepared from scratch
def test_env_prepare_readies_click_and_names_why_tiktoken_cannot_be_prepared(published, tmp_path):
    proc = cli("env", "prepare", "--dataset", str(published), "-r", CLICK, "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    states = {s["task"]: s for s in json.loads(proc.stdout)}
    assert sorted(states) == [f"{CLICK}/task2068", f"{CLICK}/task2800", f"{CLICK}/task2956"]
    assert {s["state"] for s in states.values()} == {"ready"}
    assert all(s["toolchains"] == ["uv"] and s["size_bytes"] > 1_000_000 for s in states.values())

    proc = cli("env", "prepare", "--dataset", str(published), "-r", "openai_tiktoken_task", "--json", tmp_path=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (state,) = json.loads(proc.stdout)
    assert state["state"] == "failed" and "installs system packages with sudo" in state["cause"]

    listed = cli("env", "list", tmp_path=tmp_path)
    assert listed.returncode == 0 and f"{CLICK}/task2068" in listed.stdout and "ready" in listed.stdout
    assert "openai_tiktoken_task/task0" in listed.stdout and "failed" in listed.stdout
    again = cli("env", "prepare", "--dataset", str(published), "-r", CLICK, "-t", "2068", "--json", tmp_path=tmp_path)
    assert json.loads(again.stdout)[0]["prepared_at"] == states[f"{CLICK}/task2068"]["prepared_at"]  # once


def covering_pairs(features: list[int]) -> list[list[int]]:
    """Pairs in which every feature appears: (1,2), (3,4), ... and, for an odd count, (last, first)."""
    pairs = [features[i : i + 2] for i in range(0, len(features) - 1, 2)]
    return pairs + ([[features[-1], features[0]]] if len(features) % 2 else [])


def covering_sample(published: Path, tmp_path: Path) -> tuple[Path, tuple[str, ...], dict[int, list[int]]]:
    """The click task folders (the same prepared environments) with a subset of 14 pairs that
    cover every feature: (dataset, the `run` options that select it, task id -> its features)."""
    dataset = tmp_path / "dataset"
    shutil.copytree(published / CLICK, dataset / CLICK)
    features = {t.task_id: sorted(t.features) for t in Dataset(published).tasks if t.repo == CLICK}
    cover = [{"repo": CLICK, "task_id": t, "pairs": covering_pairs(f)} for t, f in sorted(features.items())]
    (dataset / "subsets").mkdir()
    (dataset / "subsets" / "cover.json").write_text(json.dumps({"name": "cover", "tasks": cover}))
    return dataset, ("-s", "cover"), features


def test_gold_solo_passes_click_pairs_that_cover_every_feature_offline(published, tmp_path):
    """14 click pairs that cover every feature of the three tasks: both features' gold patches pass offline.
    (Every one of the 115 pairs: the `sweep` below.)"""
    dataset, selection, features = covering_sample(published, tmp_path)
    records = _gold_solo(dataset, selection, tmp_path)
    assert len(records) == 14
    tested = {(r["task_id"], int(n)) for r in records for n in r["feature_passed"]}
    assert tested == {(t, n) for t, f in features.items() for n in f}  # every feature of every click task


@pytest.mark.sweep
@pytest.mark.timeout(2400)  # all 115 pairs, two features each, at two at a time: 12.5 minutes here
def test_gold_solo_passes_every_click_pair_offline(published, tmp_path):
    assert len(_gold_solo(published, (), tmp_path)) == 115


def _gold_solo(dataset: Path, selection: tuple[str, ...], tmp_path: Path) -> list[dict]:
    """Gold solo on the click pairs selected, two at a time: every pair must pass, with no error."""
    proc = cli("run", "-n", "gold-solo", "-a", "gold", "--setting", "solo", "--dataset", str(dataset),
               "-r", CLICK, *selection, "-j", "2", "--json", tmp_path=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = json.loads(proc.stdout)
    failed = [(r["task_id"], r["features"], r["error"], r["feature_passed"]) for r in records if not r["both_passed"]]
    assert failed == []
    assert all(r["error_kind"] is None for r in records)
    return records


def test_gold_coop_matches_dataset_conflicts(published, tmp_path):
    selection = ("--dataset", str(published), "-r", CLICK, "-t", "2956", "-f", "1,2,6")  # 1 conflict, 2 clean
    expected = json.loads(cli("dataset", "conflicts", *selection, "--json", tmp_path=tmp_path).stdout)
    proc = cli("run", "-n", "gold-coop", "-a", "gold", *selection, "-j", "2", "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = {tuple(r["features"]): r for r in json.loads(proc.stdout)}
    assert len(got) == len(expected) == 3
    statuses = {e["status"] for e in expected}
    assert statuses == {"clean", "conflicts"}  # both kinds are exercised
    for e in expected:
        r = got[tuple(e["features"])]
        if e["status"] == "clean":
            assert (r["merge_status"], r["clean_success"], r["both_passed"]) == ("clean", True, True), r
        else:
            assert (r["merge_status"], r["clean_success"]) == ("conflicts", False), r
            assert r["error_kind"] is None  # a conflict is the team's outcome, not an error


def test_nop_passes_no_click_pair(published, tmp_path):
    proc = cli("run", "-n", "nop", "-a", "nop", "--setting", "solo", "--dataset", str(published),
               "-r", CLICK, "-t", "2068", "-f", "1,2,3", "--json", tmp_path=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = json.loads(proc.stdout)
    assert len(records) == 3 and not any(r["both_passed"] for r in records)
    assert all(r["error_kind"] is None and r["status"] == "done" for r in records)  # scored: tests ran and failed
    assert all(not any(r["feature_passed"].values()) for r in records)


def test_every_tiktoken_pair_is_an_infrastructure_error_naming_the_cause(published, tmp_path):
    proc = cli("run", "-n", "tiktoken", "-a", "gold", "--setting", "solo", "--dataset", str(published),
               "-r", "openai_tiktoken_task", "-j", "2", "--json", tmp_path=tmp_path)  # fmt: skip
    assert proc.returncode == 1 and "nothing was graded: 45 infrastructure" in proc.stderr, proc.stderr[-3000:]
    records = json.loads(proc.stdout)
    assert len(records) == 45
    assert {(r["status"], r["error_kind"]) for r in records} == {("error", "infra")}
    assert all("openai_tiktoken_task/task0" in r["error"] and "sudo" in r["error"] for r in records)
    assert not any(r["both_passed"] for r in records)
    table = cli("status", "-n", "tiktoken", tmp_path=tmp_path).stdout
    assert "both passed: 0/0" in table and "infrastructure errors: 45" in table  # never scored


def test_sandboxes_get_a_private_offline_copy_and_agents_find_the_project_installed(published):
    task = Dataset(published).task(CLICK, 2068)
    env = prepared.ensure(task, "local")
    caches = Path(env.caches["uv"])
    before = tree_hash(caches)
    agent_env, setup = prepared.for_agent(task, env)
    sandbox = get_backend("local", hide=[published]).create(task, labels={"agent": "probe"}, environment=agent_env)
    try:
        assert sandbox.exec(f"REPO={sandbox.repo_dir}; {setup}", timeout=600).exit_code == 0
        tests = sandbox.exec("python -m pytest tests/test_termui.py -q -p no:cacheprovider", timeout=600)
        assert tests.exit_code == 0 and " passed" in tests.output, tests.output[-2000:]
        # not in the cache, and no network: uv says so instead of fetching it
        fetch = sandbox.exec('uv pip install --python "$VIRTUAL_ENV/bin/python" six', timeout=120)
        assert fetch.exit_code != 0 and "network" in fetch.output.lower(), fetch.output
        # a command that wrecks its copy of the cache changes nothing of the prepared environment
        wreck = sandbox.exec('rm -rf "$UV_CACHE_DIR"/* && echo gone', timeout=60)
        assert wreck.exit_code == 0 and "gone" in wreck.output
        assert sandbox.exec(f"touch {caches}/planted", timeout=60).exit_code != 0
    finally:
        sandbox.close()
    assert tree_hash(caches) == before and not (caches / "planted").exists()


def test_a_changed_task_is_prepared_again_and_a_failing_gold_is_not_scored(published, tmp_path):
    copy = tmp_path / "dataset" / CLICK / "task2800"
    shutil.copytree(published / CLICK / "task2800", copy)
    task = Dataset(tmp_path / "dataset").task(CLICK, 2800)
    original = prepared.task_key(Dataset(published).task(CLICK, 2800))
    assert prepared.task_key(task) == original  # the same content: the same environment
    (copy / "feature2" / "feature.patch").write_text("")  # its gold now implements nothing
    task = Dataset(tmp_path / "dataset").task(CLICK, 2800)
    assert prepared.task_key(task) != original
    state = prepared.prepare(task, "local")
    assert state.state == "failed" and state.cause.startswith("the gold patch of feature 2 fails offline")
    with pytest.raises(prepared.EnvironmentUnavailable, match=f"{CLICK}/task2800 cannot be prepared here"):
        prepared.ensure(task, "local")


def test_no_gold_code_reaches_the_prepared_caches_even_with_a_non_editable_install(published, tmp_path):
    """A runner that installs the project non-editable builds a wheel of the working copy, which
    uv caches: had the warm run applied a gold patch, every agent's copy of the cache would hold
    that feature's implementation. The warm run applies only a marker; the gold runs are offline,
    each on a private copy of the caches."""
    copy = tmp_path / "dataset" / CLICK / "task2800"
    shutil.copytree(published / CLICK / "task2800", copy)
    runner = copy / "run_tests.sh"
    text = runner.read_text()
    assert 'uv pip install -e ".[test]"' in text
    runner.write_text(text.replace('uv pip install -e ".[test]"', 'uv pip install ".[test]"'))
    task = Dataset(tmp_path / "dataset").task(CLICK, 2800)
    state = prepared.prepare(task, "local")
    assert state.state == "ready", state.cause  # every gold passes offline, with the project built anew each run

    base = RepoCache().base(task.repo_url, task.base_commit)
    sources = b"\n".join(p.read_bytes() for p in base.rglob("*.py"))
    added = {
        line[1:].strip().encode()
        for n in task.features
        for line in task.feature(n).gold_patch.splitlines()
        if line.startswith("+") and not line.startswith("+++") and len(line.strip()) > 30
    }
    gold_only = {line for line in added if line not in sources}
    assert len(gold_only) > 20  # the features' own code, nowhere in the base
    caches = Path(state.path) / "caches"
    cached = b"\n".join(  # click as uv keeps it: its built wheels, and unpacked
        [
            *(p.read_bytes() for p in caches.rglob("click/*.py") if p.is_file()),
            *(zipfile.ZipFile(w).read(m) for w in caches.rglob("click-*.whl") for m in zipfile.ZipFile(w).namelist()),
        ]
    )
    assert b"def make_context" in cached  # the cache does hold click's sources, built from the base
    leaked = sorted(line.decode() for line in gold_only if line in cached)
    assert not leaked, leaked[:5]


def test_a_runner_that_fails_before_its_tests_is_an_evaluation_error(tmp_path):
    dataset = tmp_path / "dataset"
    shutil.copytree(DATASET / "textkit_task", dataset / "textkit_task")
    runner = dataset / "textkit_task" / "task0" / "run_tests.sh"
    lines = runner.read_text().splitlines()
    runner.write_text("\n".join([lines[0], 'echo "installing dependencies"; exit 3', *lines[1:]]) + "\n")
    proc = cli("run", "-n", "broken-runner", "-a", "gold", "--setting", "solo", "--dataset", str(dataset),
               "-f", "1,2", "--json", tmp_path=tmp_path)  # fmt: skip
    assert proc.returncode == 1 and "and 1 evaluation error(s)" in proc.stderr, proc.stderr[-3000:]
    (record,) = json.loads(proc.stdout)
    assert (record["status"], record["error_kind"]) == ("error", "evaluation")
    assert "failed before running any test (exit 3)" in record["error"]
    table = cli("status", "-n", "broken-runner", tmp_path=tmp_path).stdout
    assert "both passed: 0/0" in table and "evaluation errors: 1" in table  # not scored as the agent's


def test_mini_swe_agent_runs_the_click_tests_offline_in_its_sandbox(published, tmp_path, monkeypatch):
    from cooperbench.pair.eval_step import evaluate_pair

    from .scripted_agent import run_tests_as_agent

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-click")
    command = "python -m pytest tests/test_termui.py -q -p no:cacheprovider 2>&1 | tail -3"
    run = run_tests_as_agent(published, CLICK, 2068, command, tmp_path)
    assert " passed" in run.observation and "failed" not in run.observation
    assert "src/click/" in run.patch
    record = evaluate_pair(run.spec, run.pair, None, run.database)
    assert record["feature_passed"]["1"] is True and record["error_kind"] is None
