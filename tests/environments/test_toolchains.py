"""What a runner script needs, read from the script itself: the published runners and small made-up ones."""

from __future__ import annotations

from cooperbench.environments import toolchains

from ..conftest import ROOT

PUBLISHED = ROOT.parent / "shared" / "published" / "dataset"


def names(script: str) -> list[str]:
    return [t.name for t in toolchains.needs(script).toolchains]


def test_the_published_click_runners_need_uv_and_nothing_blocks_them():
    for task in ("task2068", "task2800", "task2956"):
        script = (PUBLISHED / "pallets_click_task" / task / "run_tests.sh").read_text()
        found = toolchains.needs(script)
        assert ([t.name for t in found.toolchains], found.blockers) == (["uv"], [])
    runner = (PUBLISHED / "pallets_click_task" / "task2068" / "run_tests.sh").read_text()
    assert toolchains.agent_tools(runner) == ["pytest", "pytest-xdist", "pytest_mock"]


def test_the_published_tiktoken_runner_cannot_be_prepared_and_says_why():
    found = toolchains.needs((PUBLISHED / "openai_tiktoken_task" / "task0" / "run_tests.sh").read_text())
    assert found.blockers == [
        "installs system packages with sudo (apt-get, yum, ...) at run time",
        "installs with pip at run time (offline pip environments are not built yet)",
    ]


def test_each_toolchain_is_found_by_how_runners_use_it_and_comments_do_not_count():
    assert names("uv venv\nsource .venv/bin/activate\nuv pip install -e .\n") == ["uv"]
    assert names("npm ci && npx vitest run src/a.test.ts\n") == ["npm"]
    assert names("go test ./... -run TestMux -v\n") == ["go"]
    assert names("cargo test --package typst -- tests::x\n") == ["cargo"]
    assert names("# uv pip install -e . was used once\npython -m pytest tests\n") == []
    assert toolchains.needs("python -m pip install -e .\n").blockers == [
        "installs with pip at run time (offline pip environments are not built yet)"
    ]
    assert toolchains.needs("uv pip install -e .\n").blockers == []  # `uv pip` is uv, not pip
    assert toolchains.needs("if ! command -v cargo; then sudo apt-get install -y cargo; fi\n").blockers == [
        "installs system packages with sudo (apt-get, yum, ...) at run time"
    ]
    # the farm provides Go itself: a branch that installs it when missing never runs
    assert toolchains.needs("if ! command -v go; then sudo apt-get install -y golang; fi\n").blockers == []


def test_a_program_missing_on_this_worker_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there (the farm's own interpreter folder still is)
    found = toolchains.needs("cargo test --package typst\n")
    assert found.problems == ["cargo is not installed on this worker (its runner needs it)"]
    assert toolchains.needs("go test ./...\n").problems == []  # the farm provides Go (environments/provision.py)


def test_only_registry_settings_reach_the_preparing_step(monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("UV_INDEX_URL", "https://mirror.example/simple")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-runners")
    passed = toolchains.network_variables()
    assert passed["SSL_CERT_FILE"] and passed["UV_INDEX_URL"] and "OPENAI_API_KEY" not in passed


RUNNERS = ROOT.parent / "shared" / "published" / "runners"


def test_a_runner_branch_that_installs_a_toolchain_the_farm_provides_blocks_nothing():
    """go-chi's runner downloads Go with sudo, react-hook-form's installs Node with `sudo apt-get` and
    pnpm with npm, each only when the program is missing: the farm provides them, so none of it runs."""
    for task in ("task26", "task27", "task56"):
        script = (RUNNERS / "go_chi_task" / task / "run_tests.sh").read_text()
        found = toolchains.needs(script)
        assert ([t.name for t in found.toolchains], found.blockers, found.missing_programs) == (["go"], [], [])
        assert toolchains.provided_tools(found, script) == ["go"]
    for task in ("task85", "task153"):
        script = (RUNNERS / "react_hook_form_task" / task / "run_tests.sh").read_text()
        found = toolchains.needs(script)
        assert ([t.name for t in found.toolchains], found.blockers) == (["npm"], [])
        assert toolchains.provided_tools(found, script) == ["node", "pnpm"]
    # a guard for a program the farm does not provide keeps its sudo, and what follows the block counts
    script = "if ! command -v cargo >/dev/null; then\n  if true; then sudo apt-get install -y rustc; fi\nfi\n"
    assert toolchains.needs(script).blockers == ["installs system packages with sudo (apt-get, yum, ...) at run time"]
    script = "if ! command -v go >/dev/null; then\n  sudo tar -xzf go.tgz\nfi\n"
    script += "sudo apt-get install -y libfoo\ngo test ./...\n"
    assert toolchains.needs(script).blockers == ["installs system packages with sudo (apt-get, yum, ...) at run time"]


def test_env_prepare_records_a_task_whose_upstream_lacks_its_base_and_goes_on(dataset_copy, tmp_path):
    import json
    import shutil

    from ..conftest import run_cli

    broken = dataset_copy / "aaa_task" / "task9"
    shutil.copytree(dataset_copy / "textkit_task" / "task0", broken)
    dockerfile = broken / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("513ffeeac63cac225e6f3537e89de4de8c6c8857", "ab" * 20))
    runner = broken / "run_tests.sh"  # a uv runner, so that it has an environment to prepare
    runner.write_text(runner.read_text().replace('"$PY" -m pytest', 'uv pip install -q pytest; "$PY" -m pytest'))
    env = {"COOPERBENCH_DB_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    proc = run_cli("env", "prepare", "--dataset", str(dataset_copy), "--json", env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    states = {s["task"]: s for s in json.loads(proc.stdout)}
    assert states["aaa_task/task9"]["state"] == "failed"
    assert f"base commit {'ab' * 20} not found" in states["aaa_task/task9"]["cause"]
    assert len(states) == 4 and all(
        s["state"] == "nothing to prepare" for k, s in states.items() if k != "aaa_task/task9"
    )


def test_an_environment_whose_provided_toolchain_is_gone_is_not_handed_out(tmp_path):
    from cooperbench.environments.prepared import EnvState, _still_there

    home = tmp_path / "go-1.27.3"
    home.mkdir()
    provided = [{"tool": "go", "version": "1.27.3", "home": str(home), "bin": str(home / "go" / "bin")}]
    state = EnvState("go_chi_task/task26", "local", "k", "ready", provided=provided)
    assert _still_there(state)
    home.rmdir()  # a cleaned cache: the environment is prepared again, its toolchain installed again
    assert not _still_there(state)
