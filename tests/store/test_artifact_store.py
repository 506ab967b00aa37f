"""The artifact store's contract, the same for every backend: a local folder, and Google Cloud
Storage through a real GCS-protocol server (gcp-storage-emulator) the test starts."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from cooperbench.errors import UserError
from cooperbench.store.artifacts import PairPaths
from cooperbench.store.backends import StoreError, open_store, read_url, size_of_url
from tests.gcs_emulator import Emulator


class LocalOutage:
    """A folder store whose mount goes away: its parent becomes a file, then comes back."""

    def __init__(self, tmp_path: Path):
        self.mount = tmp_path / "mount"
        self.mount.mkdir()
        self.url = str(self.mount / "store")
        self.away = tmp_path / "away"

    def stop(self):
        self.mount.rename(self.away)
        self.mount.write_text("not a folder")

    def start(self):
        self.mount.unlink()
        self.away.rename(self.mount)


class GCSOutage:
    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self.url = f"gs://{emulator.bucket}/some/prefix"

    def stop(self):
        self.emulator.stop()

    def start(self):
        self.emulator.start()


@pytest.fixture(params=["local", "gcs"])
def backend(request, tmp_path, monkeypatch):
    """(store URL, outage) of each backend, with retries short enough for a test."""
    monkeypatch.setenv("COOPERBENCH_ARTIFACTS_RETRIES", "2")
    monkeypatch.setenv("COOPERBENCH_ARTIFACTS_BACKOFF", "0.05")
    if request.param == "local":
        outage = LocalOutage(tmp_path)
    else:
        outage = GCSOutage(request.getfixturevalue("emulator"))
    return outage


def test_what_is_written_is_read_back_by_its_url(backend):
    store = open_store(backend.url)
    paths = PairPaths.of("exp", "textkit_task/task0/f1-f2")
    patch_url = store.put_text(paths.patch("agent1"), "diff --git a/x b/x\n\udcff raw byte kept\n")
    json_url = store.put_json(paths.result, {"both_passed": True, "features": [1, 2]})
    assert patch_url == store.url_of(paths.patch("agent1"))
    assert patch_url.startswith(backend.url) and patch_url.endswith("textkit_task/task0/f1-f2/agent1.patch")
    assert store.read(paths.patch("agent1")) == "diff --git a/x b/x\n\udcff raw byte kept\n".encode(
        "utf-8", "surrogateescape"
    )
    assert b'"both_passed": true' in read_url(json_url)
    assert size_of_url(json_url) == len(read_url(json_url)) == store.size(paths.result)
    assert store.exists(paths.result) and not store.exists(paths.messages)
    # a reader anywhere needs only the URL the database keeps
    assert open_store(backend.url).read(paths.result) == read_url(json_url)


def test_a_large_object_goes_both_ways_streamed(backend, tmp_path):
    big = tmp_path / "big.bin"
    with big.open("wb") as f:  # above 8 MiB: a resumable upload, in chunks, on GCS
        for _ in range(20):
            f.write(os.urandom(1 << 20))
    store = open_store(backend.url)
    url = store.put_file("exp/pair/solo.trajectory.json", big)
    back = tmp_path / "back.bin"
    assert store.get_file("exp/pair/solo.trajectory.json", back)
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    assert digest(back) == digest(big)
    assert size_of_url(url) == big.stat().st_size
    assert read_url(url, big.stat().st_size - 100) == big.read_bytes()[-100:]


def test_an_absent_object_is_none_not_an_error(backend, tmp_path):
    store = open_store(backend.url)
    assert store.read("exp/nothing.log") is None
    assert store.size("exp/nothing.log") is None
    assert not store.exists("exp/nothing.log")
    assert store.get_file("exp/nothing.log", tmp_path / "dest") is False
    assert not (tmp_path / "dest").exists()


def test_writes_are_idempotent_and_whole(backend):
    store = open_store(backend.url)
    store.put_text("exp/p/a.patch", "one")
    store.put_text("exp/p/a.patch", "one")  # a task delivered twice writes the same object again
    assert store.read("exp/p/a.patch") == b"one"
    store.put_text("exp/p/a.patch", "two")  # a rerun replaces it whole
    assert store.read("exp/p/a.patch") == b"two"
    texts = [chr(ord("a") + i) * 200_000 for i in range(4)]
    threads = [threading.Thread(target=store.put_text, args=("exp/p/race.log", t)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.read("exp/p/race.log").decode() in texts  # one writer's whole object, never a mix


def test_bad_keys_and_unknown_stores_are_refused(backend):
    store = open_store(backend.url)
    for key in ("../escape", "/abs/path", "", "exp//x", "exp/./x"):
        with pytest.raises(StoreError, match="not a valid artifact key"):
            store.put_text(key, "x")
    with pytest.raises(UserError, match="unknown artifact store"):
        open_store("s4://bucket/prefix")


def test_an_unreachable_store_is_an_infrastructure_error_after_the_retries(backend):
    store = open_store(backend.url)
    store.put_text("exp/p/before.log", "kept")
    backend.stop()
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreError, match="writing exp/p/after.log failed") as caught:
            store.put_text("exp/p/after.log", "x")
        assert time.monotonic() - t0 >= 0.05 + 0.1 * 0.9  # two retries, after 0.05 s and 0.1 s
        assert backend.url in str(caught.value)
        with pytest.raises(StoreError, match="reading exp/p/before.log failed"):
            store.read("exp/p/before.log")
    finally:
        backend.start()


def test_a_store_back_within_the_retries_loses_nothing(backend, monkeypatch):
    monkeypatch.setenv("COOPERBENCH_ARTIFACTS_RETRIES", "10")
    monkeypatch.setenv("COOPERBENCH_ARTIFACTS_BACKOFF", "0.1")
    store = open_store(backend.url)
    backend.stop()
    timer = threading.Timer(0.5, backend.start)
    timer.start()
    try:
        url = store.put_json("exp/p/result.json", {"ok": True})
    finally:
        timer.join()
    assert read_url(url) == b'{\n  "ok": true\n}'


def test_a_folder_store_by_file_url_is_the_same_folder(tmp_path):
    a = open_store(tmp_path / "logs")
    b = open_store(f"file://{tmp_path / 'logs'}")
    a.put_text("exp/x.log", "same")
    assert b.read("exp/x.log") == b"same"
    assert a.url_of("exp/x.log") == str(tmp_path / "logs" / "exp" / "x.log")
    shutil.rmtree(tmp_path / "logs")
