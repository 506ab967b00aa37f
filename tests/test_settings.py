"""The settings table and `cooperbench config`: one typed declaration per variable, and where each value came from."""

from __future__ import annotations

import json
import os

import pytest

from cooperbench import settings
from cooperbench.errors import UserError

from .conftest import run_cli


def test_each_variable_is_declared_once_with_type_default_and_help():
    names = [s.env for s in settings.TABLE]
    assert len(names) == len(set(names)) and all(n.startswith("COOPERBENCH_") for n in names)
    assert all(s.help.strip() and s.group for s in settings.TABLE)


def test_option_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("COOPERBENCH_HEARTBEAT_TTL", raising=False)
    assert (settings.get("heartbeat_ttl"), settings.source("heartbeat_ttl")) == (30.0, "default")
    monkeypatch.setenv("COOPERBENCH_HEARTBEAT_TTL", "7.5")
    assert (settings.get("heartbeat_ttl"), settings.source("heartbeat_ttl")) == (7.5, "environment")
    assert settings.get("logs", "/elsewhere") == "/elsewhere" and settings.source("logs", "/x") == "option"
    monkeypatch.setenv("COOPERBENCH_HEARTBEAT_TTL", "soon")
    with pytest.raises(UserError, match="COOPERBENCH_HEARTBEAT_TTL='soon' is not a valid value"):
        settings.get("heartbeat_ttl")


def test_an_empty_image_prefix_is_a_value_but_an_empty_path_is_not(monkeypatch):
    monkeypatch.setenv("COOPERBENCH_IMAGE_PREFIX", "")
    assert settings.get("image_prefix") == ""  # never pull
    monkeypatch.setenv("COOPERBENCH_LOGS", "")
    assert settings.logs_dir() == (settings.Path.cwd() / "logs").resolve()


def test_defaults_that_follow_other_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("COOPERBENCH_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv("COOPERBENCH_SCRATCH", raising=False)
    monkeypatch.delenv("COOPERBENCH_GIT_ROOT", raising=False)
    assert settings.scratch_dir() == tmp_path / "c" / "sandboxes"
    assert settings.get("git_root") == tmp_path / "c" / "remotes"
    monkeypatch.setenv("COOPERBENCH_NO_BWRAP", "yes")
    assert settings.get("no_bwrap") is True


def test_dotenv_values_say_they_came_from_the_dotenv_file(monkeypatch, tmp_path):
    (tmp_path / "keys.env").write_text("export COOPERBENCH_MODAL_APP='from-dotenv'\n# a comment\nOTHER=1\n")
    monkeypatch.setenv("COOPERBENCH_DOTENV", str(tmp_path / "keys.env"))
    monkeypatch.delenv("COOPERBENCH_MODAL_APP", raising=False)
    monkeypatch.delenv("OTHER", raising=False)
    try:
        assert sorted(settings.load_dotenv()) == ["COOPERBENCH_MODAL_APP", "OTHER"]
        assert (settings.get("modal_app"), settings.source("modal_app")) == ("from-dotenv", ".env")
    finally:
        os.environ.pop("COOPERBENCH_MODAL_APP", None)
        os.environ.pop("OTHER", None)


def test_dotenv_inline_comments_are_not_part_of_the_value(monkeypatch, tmp_path):
    (tmp_path / "keys.env").write_text(
        "KEY_A=abc # note\nKEY_B='quoted # kept' # note\nKEY_C=\"x\"\nexport KEY_D=d#not-a-comment\n"
    )
    monkeypatch.setenv("COOPERBENCH_DOTENV", str(tmp_path / "keys.env"))
    names = ["KEY_A", "KEY_B", "KEY_C", "KEY_D"]
    for name in names:
        monkeypatch.delenv(name, raising=False)
    try:
        assert sorted(settings.load_dotenv()) == names
        assert [os.environ[n] for n in names] == ["abc", "quoted # kept", "x", "d#not-a-comment"]
    finally:
        for name in names:
            os.environ.pop(name, None)


def test_config_prints_every_setting_with_its_source_and_hides_passwords(tmp_path):
    env = {
        "COOPERBENCH_BROKER_URL": "redis://:hunter2@127.0.0.1:6379/3",
        "COOPERBENCH_INFRA_RETRIES": "5",
    }
    proc = run_cli(
        "config", "--json", "--db", "postgresql+psycopg://farm:s3cret@db:5432/results", env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {s.env for s in settings.TABLE}
    assert rows["COOPERBENCH_DB_URL"]["source"] == "option"
    assert rows["COOPERBENCH_DB_URL"]["value"] == "postgresql+psycopg://farm:***@db:5432/results"
    assert rows["COOPERBENCH_BROKER_URL"]["source"] == "environment" and "hunter2" not in proc.stdout
    assert "s3cret" not in proc.stdout
    assert (rows["COOPERBENCH_INFRA_RETRIES"]["value"], rows["COOPERBENCH_INFRA_RETRIES"]["source"]) == (
        "5",
        "environment",
    )
    assert rows["COOPERBENCH_HEARTBEAT_TTL"]["source"] == "default"

    table = run_cli("config", env=env, cwd=tmp_path)
    assert table.returncode == 0 and "COOPERBENCH_VISIBILITY_TIMEOUT" in table.stdout
    assert "(environment)" in table.stdout and "(default)" in table.stdout and "hunter2" not in table.stdout


def test_config_names_a_bad_value_in_one_line(tmp_path):
    proc = run_cli("config", env={"COOPERBENCH_VISIBILITY_TIMEOUT": "long"}, cwd=tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "invalid" in proc.stdout
