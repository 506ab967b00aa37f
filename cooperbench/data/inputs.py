"""What travels with an experiment: the task folders it uses and its agent config.

At submit, `publish` puts each task folder the experiment uses (as a tar of its sorted files,
with fixed owners, times and modes, so the same folder always makes the same bytes) and the
agent config into the artifact store under the SHA-256 of their content, each uploaded only if
the store lacks it, and then a manifest naming those hashes; the experiment carries only the
manifest's hash (`ExperimentSpec.inputs`). On a worker, `task` and `agent_config` fetch what
the manifest names once per machine into the cache (`<cache>/inputs/`, checked against its
hash, unpacked beside and renamed into place, so concurrent workers never see half of one) and
read it from there: a worker needs no copy of the dataset at the submitter's path.

The tar keeps the folder as it is: a symlink stays a symlink (never followed, so nothing outside
the task folder is ever read or uploaded), and the dataset reader refuses it on the worker as
it would have on the submitter.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from .. import settings
from ..errors import UserError
from ..store.artifacts import InputKeys
from ..store.backends import StoreError, open_store
from .dataset import Dataset, Task

CHUNK = 1 << 20


def cache_root() -> Path:
    """Where a machine keeps the inputs it fetched (hidden from sandboxes: it holds gold patches)."""
    return settings.cache_dir() / "inputs"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _normal(info: tarfile.TarInfo, mode: int) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    info.mode = 0o755 if mode & 0o111 else 0o644
    return info


def archive(task: Task, dest: Path) -> str:
    """Write the task folder as a tar to `dest` (members `<repo>/task<id>/...`); returns its SHA-256."""
    top = Path(task.path)
    prefix = f"{task.repo}/task{task.task_id}"
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for folder, dirs, files in os.walk(top):
            dirs.sort()
            here = Path(folder)
            for name in sorted(files) + sorted(d for d in dirs if (here / d).is_symlink()):
                path = here / name
                arcname = f"{prefix}/{path.relative_to(top).as_posix()}"
                info = os.lstat(path)
                if stat.S_ISLNK(info.st_mode):
                    member = tarfile.TarInfo(arcname)
                    member.type, member.linkname = tarfile.SYMTYPE, os.readlink(path)
                    tar.addfile(_normal(member, 0o777))
                elif stat.S_ISREG(info.st_mode):
                    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
                    with os.fdopen(fd, "rb") as f:
                        member = tar.gettarinfo(arcname=arcname, fileobj=f)
                        tar.addfile(_normal(member, member.mode), f)
                # anything else (a FIFO, a socket) is no task file: left out
    return _sha256(dest)


def _put_once(store, key: str, path: Path) -> None:
    if not store.exists(key):
        store.put_file(key, path)


def publish(store_url: str, tasks: list[Task], agent_config: str | None) -> str:
    """Put the tasks and the agent config in the store (each once, by content); returns the manifest's hash."""
    store = open_store(store_url)
    manifest: dict = {"tasks": {}, "agent_config": None}
    try:
        with tempfile.TemporaryDirectory(prefix="cooperbench-inputs-") as tmp:
            for task in tasks:
                tar = Path(tmp) / "task.tar"
                sha = archive(task, tar)
                _put_once(store, InputKeys.task(sha), tar)
                manifest["tasks"][task.key] = sha
            if agent_config is not None:
                sha = _sha256(Path(agent_config))
                _put_once(store, InputKeys.config(sha), Path(agent_config))
                manifest["agent_config"] = {"sha256": sha, "name": Path(agent_config).name}
            text = json.dumps(manifest, sort_keys=True).encode()
            sha = hashlib.sha256(text).hexdigest()
            if not store.exists(InputKeys.manifest(sha)):
                store.put_bytes(InputKeys.manifest(sha), text)
    except StoreError as exc:
        raise UserError(f"cannot put the experiment's inputs in the artifact store: {exc}") from None
    return sha


def _fetch(store_url: str, key: str, sha: str, dest: Path) -> None:
    """Download `key` to `dest` and check it is the content `sha` names (else a StoreError: retried)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not open_store(store_url).get_file(key, dest):
        raise StoreError(f"artifact store {store_url}: {key} is missing")
    if _sha256(dest) != sha:
        raise StoreError(f"artifact store {store_url}: {key} does not match its hash")


def _cached(kind: str, sha: str, make) -> Path:
    """`<cache>/inputs/<kind>/<sha>`, made once by `make(tmp_folder)` and renamed into place."""
    final = cache_root() / kind / sha
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{sha}.", dir=final.parent))
    try:
        make(tmp)
        try:
            tmp.rename(final)
        except OSError:
            if not final.exists():  # another process put it there first: theirs is the same content
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Unpack a task tar: only files and symlinks (links kept as links), every name inside `dest`,
    once, and none under a symlink. Checked here, as Python before 3.11.4 (Debian 12's) has no
    filters, and no filter stops a file written through a link of the same name."""
    members, links, seen = tar.getmembers(), set(), set()
    for member in members:
        name = PurePosixPath(member.name)
        inside = not name.is_absolute() and ".." not in name.parts and str(name) not in seen
        if not inside or not (member.isreg() or member.issym()) or any(str(p) in links for p in name.parents):
            raise UserError(f"a task tar holds {member.name!r}: not a file or symlink inside its folder")
        seen.add(str(name))
        if member.issym():
            links.add(str(name))
    if hasattr(tarfile, "tar_filter"):
        tar.extractall(dest, members=members, filter="tar")
    else:  # checked above
        tar.extractall(dest, members=members)


def manifest(store_url: str, sha: str) -> dict:
    def make(folder: Path) -> None:
        _fetch(store_url, InputKeys.manifest(sha), sha, folder / "manifest.json")

    return json.loads((_cached("manifests", sha, make) / "manifest.json").read_text())


# Tasks read from this machine's cache, by (cache, store, manifest, repo, id): the cached folders are
# named by their content's hash, so a task read once (its files parsed, its patches read) is the
# same task for the life of the process; a pair's two steps and every pair after it reuse it.
_tasks: dict[tuple, Task] = {}
_TASKS_KEPT = 4096


def task(store_url: str, manifest_sha: str, repo: str, task_id: int) -> Task:
    """The task as the experiment's inputs hold it, from this machine's cache (fetched on first use)."""
    known = (str(cache_root()), store_url, manifest_sha, repo, task_id)
    found = _tasks.get(known)
    if found is not None and found.path.is_dir():  # unless its cached folder was cleaned away since
        return found
    found = _read_task(store_url, manifest_sha, repo, task_id)
    if len(_tasks) >= _TASKS_KEPT:
        _tasks.clear()
    _tasks[known] = found
    return found


def _read_task(store_url: str, manifest_sha: str, repo: str, task_id: int) -> Task:
    key = f"{repo}/task{task_id}"
    sha = manifest(store_url, manifest_sha)["tasks"].get(key)
    if sha is None:
        raise UserError(f"task {key} is not among the experiment's inputs")

    def make(folder: Path) -> None:
        tar = folder / "task.tar"
        _fetch(store_url, InputKeys.task(sha), sha, tar)
        with tarfile.open(tar) as archive_file:
            _extract(archive_file, folder / "dataset")
        tar.unlink()

    return Dataset(_cached("tasks", sha, make) / "dataset").task(repo, task_id)


def agent_config(store_url: str, manifest_sha: str) -> str | None:
    """The path of this machine's copy of the experiment's agent config, or None if it has none."""
    entry = manifest(store_url, manifest_sha).get("agent_config")
    if not entry:
        return None
    sha, name = entry["sha256"], Path(entry["name"]).name or "config"

    def make(folder: Path) -> None:
        _fetch(store_url, InputKeys.config(sha), sha, folder / name)

    return str(_cached("configs", sha, make) / name)
