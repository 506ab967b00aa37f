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
    assert toolchains.needs("if ! command -v go; then sudo apt-get install -y golang; fi\n").blockers == [
        "installs system packages with sudo (apt-get, yum, ...) at run time"
    ]


def test_a_program_missing_on_this_worker_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there (the farm's own interpreter folder still is)
    found = toolchains.needs("go test ./...\n")
    assert found.problems == ["go is not installed on this worker (its runner needs it)"]


def test_only_registry_settings_reach_the_preparing_step(monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("UV_INDEX_URL", "https://mirror.example/simple")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-runners")
    passed = toolchains.network_variables()
    assert passed["SSL_CERT_FILE"] and passed["UV_INDEX_URL"] and "OPENAI_API_KEY" not in passed
