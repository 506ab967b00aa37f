"""The dataset and the agent config travel with an experiment through the artifact store, by
content hash, to a worker that has no copy of them (on a local folder store and on GCS)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from cooperbench.data import inputs as travel
from cooperbench.data.dataset import Dataset
from cooperbench.errors import UserError
from cooperbench.store.artifacts import InputKeys
from cooperbench.store.backends import StoreError, open_store


@pytest.fixture(params=["local", "gcs"])
def store_url(request, tmp_path, monkeypatch):
    monkeypatch.setenv("COOPERBENCH_ARTIFACTS_RETRIES", "1")
    monkeypatch.setenv("COOPERBENCH_ARTIFACTS_BACKOFF", "0.05")
    if request.param == "local":
        return str(tmp_path / "store")
    return f"gs://{request.getfixturevalue('emulator').bucket}/farm"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _another_machine(monkeypatch, tmp_path, name: str) -> None:
    monkeypatch.setenv("COOPERBENCH_CACHE", str(tmp_path / name / "cache"))


def test_a_worker_without_the_dataset_gets_the_same_task_and_config(store_url, dataset_copy, tmp_path, monkeypatch):
    task = Dataset(dataset_copy).tasks[0]
    config = tmp_path / "agent.yaml"
    config.write_text("step_limit: 7\n")
    original, base = _files(task.path), task.base_commit
    sha = travel.publish(store_url, [task], str(config))
    assert travel.publish(store_url, [task], str(config)) == sha  # the same content: the same hash
    shutil.rmtree(dataset_copy)  # the submitter's copy is gone; the worker never had one
    config.unlink()
    _another_machine(monkeypatch, tmp_path, "worker")
    fetched = travel.task(store_url, sha, task.repo, task.task_id)
    assert (fetched.repo, fetched.task_id, sorted(fetched.features)) == (task.repo, task.task_id, sorted(task.features))
    assert fetched.path.is_relative_to(travel.cache_root())
    assert _files(fetched.path) == original
    assert fetched.base_commit == base and Path(fetched.repo_url).is_relative_to(fetched.path)  # its own bundle
    assert Path(travel.agent_config(store_url, sha)).read_text() == "step_limit: 7\n"
    assert travel.task(store_url, sha, task.repo, task.task_id).path == fetched.path  # cached: fetched once
    with pytest.raises(UserError, match="not among the experiment's inputs"):
        travel.task(store_url, sha, task.repo, task.task_id + 100)


def test_a_task_is_read_once_per_process_until_its_cached_folder_goes(dataset_copy, tmp_path, monkeypatch):
    store = str(tmp_path / "store")
    task = Dataset(dataset_copy).tasks[0]
    sha = travel.publish(store, [task], None)
    _another_machine(monkeypatch, tmp_path, "worker")
    first = travel.task(store, sha, task.repo, task.task_id)
    feature = sorted(first.features)[0]
    gold = first.feature(feature).gold_patch
    again = travel.task(store, sha, task.repo, task.task_id)
    assert again is first and again.feature(feature).gold_patch is gold  # parsed and read once
    shutil.rmtree(travel.cache_root())  # the machine's cache cleaned away: fetched and read anew
    fresh = travel.task(store, sha, task.repo, task.task_id)
    assert fresh is not first and fresh.path.is_dir() and fresh.feature(feature).gold_patch == gold
    _another_machine(monkeypatch, tmp_path, "other")  # another cache: its own copy
    assert travel.task(store, sha, task.repo, task.task_id).path.is_relative_to(tmp_path / "other")


def test_each_task_is_stored_once_by_its_content(store_url, dataset_copy):
    ds = Dataset(dataset_copy)
    first, second = ds.tasks[0], ds.tasks[1]
    sha = travel.publish(store_url, [first, second], None)
    store = open_store(store_url)
    hashes = travel.manifest(store_url, sha)["tasks"]
    assert set(hashes) == {first.key, second.key} and len(set(hashes.values())) == 2
    assert all(store.exists(InputKeys.task(h)) for h in hashes.values())
    (first.path / "feature1" / "feature.md").write_text("changed\n")
    again = travel.manifest(store_url, travel.publish(store_url, [first, second], None))["tasks"]
    assert again[second.key] == hashes[second.key] and again[first.key] != hashes[first.key]


def test_a_symlink_out_of_the_task_travels_as_a_link_and_is_never_read(store_url, dataset_copy, tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("TOP-SECRET-VALUE")
    task = Dataset(dataset_copy).tasks[0]
    (task.path / "feature1" / "feature.md").unlink()
    (task.path / "feature1" / "feature.md").symlink_to(secret)
    sha = travel.publish(store_url, [task], None)
    tar = open_store(store_url).read(InputKeys.task(travel.manifest(store_url, sha)["tasks"][task.key]))
    assert b"TOP-SECRET-VALUE" not in tar
    _another_machine(monkeypatch, tmp_path, "worker")
    fetched = travel.task(store_url, sha, task.repo, task.task_id)
    assert os.readlink(fetched.path / "feature1" / "feature.md") == str(secret)
    with pytest.raises(UserError, match="leads outside its task folder"):
        fetched.feature(1).spec


def test_a_tampered_object_is_refused_and_nothing_is_cached(store_url, dataset_copy, tmp_path, monkeypatch):
    task = Dataset(dataset_copy).tasks[0]
    sha = travel.publish(store_url, [task], None)
    key = InputKeys.task(travel.manifest(store_url, sha)["tasks"][task.key])
    open_store(store_url).put_bytes(key, b"not the task")
    _another_machine(monkeypatch, tmp_path, "worker")
    with pytest.raises(StoreError, match="does not match its hash"):
        travel.task(store_url, sha, task.repo, task.task_id)
    assert not list((travel.cache_root() / "tasks").iterdir())


@pytest.mark.parametrize(
    "member", ["memkv_task/task2/link/evil", "memkv_task/task2/link", "memkv_task/task2/../../evil", "/evil"]
)
def test_a_task_tar_writing_outside_its_folder_is_refused(member, tmp_path, monkeypatch):
    """A hand-made tar under its true hash (a hostile submitter): a name through a symlink, a file
    over a symlink, with `..` or absolute is refused before anything is unpacked, on every Python."""
    store_url, outside = str(tmp_path / "store"), tmp_path / "outside"
    outside.mkdir()
    tar_path = tmp_path / "task.tar"
    with tarfile.open(tar_path, "w") as tar:
        link = tarfile.TarInfo("memkv_task/task2/link")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        tar.addfile(link)
        evil = tarfile.TarInfo(member)
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
    task_sha = hashlib.sha256(tar_path.read_bytes()).hexdigest()
    store = open_store(store_url)
    store.put_file(InputKeys.task(task_sha), tar_path)
    manifest = json.dumps({"tasks": {"memkv_task/task2": task_sha}, "agent_config": None}, sort_keys=True).encode()
    manifest_sha = hashlib.sha256(manifest).hexdigest()
    store.put_bytes(InputKeys.manifest(manifest_sha), manifest)
    _another_machine(monkeypatch, tmp_path, "worker")
    with pytest.raises(UserError, match="not a file or symlink inside its folder"):
        travel.task(store_url, manifest_sha, "memkv_task", 2)
    assert not list(outside.iterdir()) and not (tmp_path / "evil").exists()
    assert not list((travel.cache_root() / "tasks").iterdir())
