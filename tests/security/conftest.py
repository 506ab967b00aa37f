"""A worker's surroundings for the attacks: its working folder with a `.env`, a dataset with a
gold patch, a results database, logs, and a local backend whose sandboxes an agent attacks."""

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from cooperbench.data.repocache import RepoCache
from cooperbench.sandbox.local import LocalBackend

from ..conftest import TaskRef

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
KEY = "sk-test-very-secret-key-0123456789"


@dataclass
class World:
    backend: LocalBackend
    task: TaskRef
    workdir: Path  # the worker's working folder, holding a .env
    gold: Path  # a gold patch in the dataset
    database: Path  # the results database (SQLite)
    outside: Path  # a host folder no sandbox should write to
    marks: Path  # where a command run by the harness, unconfined, would leave a mark
    home_file: Path  # a file in the worker's home


@pytest.fixture
def world(upstream, monkeypatch):
    """Everything lies in a folder anyone on the host may read (mode 755, files 644): only the
    sandbox's walls keep a confined command out, not the files' permissions."""
    bare, base, _ = upstream
    tmp_path = Path(tempfile.mkdtemp(prefix="cooperbench-attack-", dir="/var/tmp"))
    os.chmod(tmp_path, 0o755)
    workdir = tmp_path / "worker"
    workdir.mkdir()
    (workdir / ".env").write_text(f"OPENAI_API_KEY={KEY}\n")
    gold = tmp_path / "dataset" / "lib_task" / "task1" / "feature1" / "feature.patch"
    gold.parent.mkdir(parents=True)
    gold.write_text("the gold patch\n")
    database = tmp_path / "results.db"
    database.write_text("scores\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    marks = tmp_path / "marks"
    marks.mkdir()
    for path in (workdir, gold.parent, outside, marks):
        os.chmod(path, 0o777)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("COOPERBENCH_DATASET", str(tmp_path / "dataset"))
    monkeypatch.setenv("COOPERBENCH_DB_URL", f"sqlite:///{database}")
    home_file = Path.home() / f".{tmp_path.name}"
    home_file.write_text("a token of the worker's\n")
    backend = LocalBackend(cache=RepoCache(tmp_path / "cache"))
    yield World(backend, TaskRef(str(bare), base), workdir, gold, database, outside, marks, home_file)
    home_file.unlink()
    shutil.rmtree(tmp_path, ignore_errors=True)
