"""Reads a CooperBench dataset folder: tasks, their features, and the feature pairs to run.

Layout (unchanged from the published benchmark): `<root>/<repo>/task<id>/` holding a
`Dockerfile` (or `setup.sh`) that names the upstream repository and base commit, a
`runner.sh` / `run_tests.sh` pair that runs a feature's tests, and `feature<N>/` folders
with `feature.md`, `feature.patch` and `tests.patch`. `<root>/subsets/*.json` name pair
subsets. Other files the published dataset carries are ignored.

Every read of a task's own files goes through `read_task_file` (or `read_task_text`): a file
that resolves outside its task folder (a symlink out, `..`), is not a regular file, or is
over MAX_TASK_FILE_BYTES is refused with a one-line UserError and never read.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..errors import UserError

_TASK_DIR = re.compile(r"^task(\d+)$")
_FEATURE_DIR = re.compile(r"^feature(\d+)$")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")

# The largest task file read. Above patchcheck.MAX_PATCH_BYTES (20 MiB), so an oversized
# patch still gets the patch checker's own message.
MAX_TASK_FILE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Feature:
    number: int
    path: Path

    @property
    def spec(self) -> str:
        return self.read_text("feature.md", errors="replace")

    @cached_property  # read once per Feature (a task's files are read again for every new Task)
    def gold_patch(self) -> str:
        return self.read_text("feature.patch")

    @cached_property
    def tests_patch(self) -> str:
        return self.read_text("tests.patch")

    def read_text(self, name: str, errors: str = "surrogateescape") -> str:
        """The feature folder's file `name`, checked as a file of its task folder."""
        return read_task_text(self.path.parent, f"{self.path.name}/{name}", errors=errors)


@dataclass(frozen=True)
class Task:
    repo: str
    task_id: int
    path: Path
    features: dict[int, Feature] = field(compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.repo}/task{self.task_id}"

    @cached_property
    def upstream(self) -> tuple[str, str]:
        """(clone source, base commit), as the task's own Dockerfile or setup.sh say."""
        return _upstream_of(self.path)

    @cached_property
    def test_script(self) -> bytes | None:
        """The task's `run_tests.sh` (read once per Task), or None when it has none."""
        if not (self.path / "run_tests.sh").is_file():
            return None
        return read_task_file(self.path, "run_tests.sh")

    @property
    def repo_url(self) -> str:
        return self.upstream[0]

    @property
    def base_commit(self) -> str:
        return self.upstream[1]

    @property
    def image_name(self) -> str:
        """Name of the published prebuilt image for this task."""
        short = self.repo.removesuffix("_task").replace("_", "-")
        return f"cooperbench-{short}:task{self.task_id}"

    def feature(self, number: int) -> Feature:
        try:
            return self.features[number]
        except KeyError:
            raise UserError(f"{self.key} has no feature {number} (it has {_numbers(self.features)})") from None


@dataclass(frozen=True, order=True)
class Pair:
    """One unit of work: a task and the features its agent(s) implement."""

    repo: str
    task_id: int
    features: tuple[int, ...]

    @property
    def key(self) -> str:
        return f"{self.repo}/task{self.task_id}/" + "-".join(f"f{n}" for n in self.features)

    def to_json(self) -> dict:
        return {"repo": self.repo, "task_id": self.task_id, "features": list(self.features)}

    @classmethod
    def from_json(cls, data: dict) -> Pair:
        return cls(data["repo"], int(data["task_id"]), tuple(sorted(int(f) for f in data["features"])))


class Dataset:
    def __init__(self, root: Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError(f"dataset folder not found: {self.root}")

    @cached_property
    def tasks(self) -> list[Task]:
        tasks = []
        for repo_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for task_dir in sorted(repo_dir.iterdir()):
                m = _TASK_DIR.match(task_dir.name)
                if m and task_dir.is_dir():
                    features = {}
                    for fdir in task_dir.iterdir():
                        fm = _FEATURE_DIR.match(fdir.name)
                        if fm and fdir.is_dir():
                            features[int(fm.group(1))] = Feature(int(fm.group(1)), fdir)
                    tasks.append(Task(repo_dir.name, int(m.group(1)), task_dir, dict(sorted(features.items()))))
        return sorted(tasks, key=lambda t: (t.repo, t.task_id))

    def task(self, repo: str, task_id: int) -> Task:
        for t in self.tasks:
            if t.repo == repo and t.task_id == int(task_id):
                return t
        raise UserError(f"no task {repo}/task{task_id} in {self.root}")

    def subset(self, name: str) -> dict[tuple[str, int], list[tuple[int, ...]] | None]:
        path = self.root / "subsets" / f"{name}.json"
        if not path.is_file():
            known = sorted(p.stem for p in (self.root / "subsets").glob("*.json"))
            raise UserError(f"unknown subset {name!r} (known: {', '.join(known) or 'none'})")
        try:
            data = json.loads(path.read_text())
            return {
                (t["repo"], int(t["task_id"])): (
                    [tuple(sorted(int(x) for x in p)) for p in t["pairs"]] if "pairs" in t else None
                )
                for t in data["tasks"]
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"malformed subset file {path}: {exc}") from None

    def pairs(
        self,
        repo: str | None = None,
        task_id: int | None = None,
        features: tuple[int, ...] | None = None,
        subset: str | None = None,
    ) -> list[Pair]:
        """All unordered feature pairs that pass the filters, in a stable order."""
        tasks = self.tasks
        if repo is not None:
            tasks = [t for t in tasks if t.repo == repo]
            if not tasks:
                raise UserError(f"unknown repo {repo!r} (known: {', '.join(sorted({t.repo for t in self.tasks}))})")
        if task_id is not None:
            tasks = [t for t in tasks if t.task_id == int(task_id)]
            if not tasks:
                raise UserError(f"unknown task {task_id}" + (f" in {repo}" if repo else ""))
        chosen = self.subset(subset) if subset else None
        pairs: list[Pair] = []
        for t in tasks:
            if chosen is not None:
                if (t.repo, t.task_id) not in chosen:
                    continue
                listed = chosen[(t.repo, t.task_id)]
            else:
                listed = None
            candidates = listed if listed is not None else list(itertools.combinations(sorted(t.features), 2))
            for combo in candidates:
                if features and not set(features) <= set(combo) and not set(combo) <= set(features):
                    continue
                for n in combo:
                    t.feature(n)
                pairs.append(Pair(t.repo, t.task_id, tuple(sorted(combo))))
        if features:
            missing = [n for n in features if not any(n in p.features for p in pairs)]
            if missing or not pairs:
                raise UserError(f"no pair with feature(s) {','.join(map(str, features))} in the selected tasks")
        if chosen is not None:
            unknown = set(chosen) - {(t.repo, t.task_id) for t in self.tasks}
            if unknown:
                r, i = sorted(unknown)[0]
                raise UserError(f"subset {subset!r} names unknown task {r}/task{i}")
        return sorted(set(pairs))


def _numbers(features: dict) -> str:
    return ", ".join(map(str, features)) or "none"


def read_task_file(task_dir: Path, name: str, *, limit: int = MAX_TASK_FILE_BYTES) -> bytes:
    """The bytes of the file `name` (relative to `task_dir`, may name a subfolder).

    Refused with a one-line UserError, before anything is read, when the file resolves
    outside the task folder (a symlink out, `..`), is not a regular file, or is larger than
    `limit` bytes. A symlink that stays inside the task folder is followed.
    """
    path = Path(task_dir) / name
    try:
        real = path.resolve(strict=True)
        folder = Path(task_dir).resolve(strict=True)
    except FileNotFoundError:
        raise UserError(f"missing {path.name} in {path.parent}") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
        raise UserError(f"task file {path} refused: cannot resolve it ({type(exc).__name__})") from None
    if not real.is_relative_to(folder):
        raise UserError(f"task file {path} refused: it leads outside its task folder, to {real}")
    info = real.stat()
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"task file {path} refused: not a regular file")
    if info.st_size > limit:
        raise UserError(f"task file {path} refused: {info.st_size} bytes, over the limit of {limit}")
    fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())  # the file opened is the file checked, even if it was swapped
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            raise UserError(f"task file {path} refused: it changed while being read")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise UserError(f"task file {path} refused: over the limit of {limit} bytes")
    return data


def read_task_text(task_dir: Path, name: str, *, errors: str = "surrogateescape") -> str:
    """`read_task_file` decoded as UTF-8."""
    return read_task_file(task_dir, name).decode("utf-8", errors)


def _upstream_of(task_dir: Path) -> tuple[str, str]:
    """Find the clone source and base commit from the Dockerfile, else from setup.sh."""
    if (task_dir / "Dockerfile").is_file():
        found = _parse_dockerfile(read_task_text(task_dir, "Dockerfile", errors="replace"), task_dir)
        if found:
            return found
    if (task_dir / "setup.sh").is_file():
        found = _parse_setup_sh(read_task_text(task_dir, "setup.sh", errors="replace"))
        if found:
            return found
    raise UserError(f"{task_dir}: cannot find the upstream repository and base commit in Dockerfile or setup.sh")


def _shell_words(text: str) -> list[list[str]]:
    """Split shell text (RUN lines, scripts) into simple commands."""
    text = text.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        line = re.sub(r"^\s*RUN\s+", "", line)
        for part in re.split(r"&&|\|\||;", line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                continue
            if words:
                commands.append(words)
    return commands


def _clone_and_checkout(commands: list[list[str]]) -> tuple[str | None, str | None]:
    source = sha = None
    for words in commands:
        if len(words) >= 3 and words[0] == "git" and words[1] == "clone":
            args = [w for w in words[2:] if not w.startswith("-")]
            if args:
                source = args[0]
        elif len(words) >= 3 and words[0] == "git" and words[1] in ("checkout", "reset"):
            for w in words[2:]:
                if _SHA.match(w):
                    sha = w
    return source, sha


def _parse_dockerfile(text: str, task_dir: Path) -> tuple[str, str] | None:
    commands = _shell_words(text)
    source, sha = _clone_and_checkout(commands)
    if not source or not sha:
        return None
    if "://" not in source and not source.startswith("git@"):
        # A clone from a file the Dockerfile COPYs in: use the task folder's copy.
        for line in text.splitlines():
            m = re.match(r"^\s*(?:COPY|ADD)\s+(\S+)\s+(\S+)\s*$", line)
            if m and (m.group(2) == source or source.startswith(m.group(2).rstrip("/") + "/")):
                local = task_dir / m.group(1)
                if m.group(2) != source:
                    local = local / source[len(m.group(2).rstrip("/")) + 1 :]
                if local.exists():
                    return str(local.resolve()), sha
        return None
    return source, sha


def _parse_setup_sh(text: str) -> tuple[str, str] | None:
    variables = dict(re.findall(r'^\s*([A-Z_][A-Z0-9_]*)="?([^"\s#]*)"?', text, re.M))

    def expand(s: str) -> str:
        return re.sub(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", lambda m: variables.get(m.group(1), m.group(0)), s)

    source, sha = _clone_and_checkout(_shell_words(expand(text)))
    sha = sha or variables.get("BASE_COMMIT")
    if source and sha and "$" not in source and _SHA.match(sha):
        return source, sha
    return None
