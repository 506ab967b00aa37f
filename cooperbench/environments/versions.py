"""The toolchain versions a task declares it needs, read from its files and its base commit.

Each declaration is a minimum, and the task needs the newest toolchain that meets all of them:
the image tag of its Dockerfile (`FROM golang:1.21-alpine`, `FROM node:22-slim`), `go.mod`'s
`go` line, Go build constraints in its feature and test patches (`//go:build go1.22`: with an
older Go the file is left out and its tests silently do not run), `engines.node` in
`package.json`. A pnpm lockfile's `lockfileVersion` fixes pnpm's major line (a newer major
refuses the install), and `packageManager` in `package.json` fixes pnpm's version outright.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..data.dataset import Task, read_task_text

Version = tuple[int, ...]


@dataclass
class Requirement:
    """What a task needs of one toolchain: at least `minimum`, on the `line` (a major) if one is fixed,
    or exactly `exact`; `why` says where each came from."""

    tool: str
    minimum: Version = ()
    line: int | None = None
    exact: str | None = None
    why: list[str] = field(default_factory=list)

    def at_least(self, version: Version, source: str) -> None:
        if (said := f"{source}: {dotted(version)}") not in self.why:
            self.why.append(said)
        self.minimum = max(self.minimum, version)

    def spec(self, sep: str = ",") -> str:
        """The requirement as a version range (`>=1.22`, `==9.15.4`, `>=9,<10`; npm's with `sep=" "`)."""
        if self.exact:
            return f"=={self.exact}" if sep == "," else self.exact
        low = max(self.minimum, (self.line,)) if self.line is not None else self.minimum
        parts = [f">={dotted(low)}"] if low else []
        if self.line is not None:
            parts.append(f"<{self.line + 1}")
        return sep.join(parts)

    def admits(self, version: str) -> bool:
        found = parse(version)
        if self.exact:
            return found == parse(self.exact)
        if self.line is not None and found[:1] != (self.line,):
            return False
        return found >= self.minimum

    def describe(self) -> str:
        return f"{self.tool} {self.spec() or '(any)'}" + (f" ({'; '.join(self.why)})" if self.why else "")


def dotted(version: Version) -> str:
    return ".".join(map(str, version))


def parse(text: str) -> Version:
    """`1.22.3` -> (1, 22, 3); `go1.22` -> (1, 22); `v9.0` -> (9, 0)."""
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])


GO_IMAGE = re.compile(r"^\s*FROM\s+(?:\S+/)?golang:(\d+(?:\.\d+)*)", re.M | re.I)
NODE_IMAGE = re.compile(r"^\s*FROM\s+(?:\S+/)?node:(\d+(?:\.\d+)*)", re.M | re.I)
GO_LINE = re.compile(r"^go\s+(\d+\.\d+(?:\.\d+)?)\s*$", re.M)
GO_BUILD = re.compile(r"^\+?//go:build\s+(.*)$", re.M)
GO_RELEASE = re.compile(r"\bgo1\.(\d+)\b")
LOCKFILE = re.compile(r"^lockfileVersion:\s*'?(\d+)", re.M)


def _text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _dockerfile(task: Task) -> str:
    return read_task_text(task.path, "Dockerfile") if (task.path / "Dockerfile").is_file() else ""


def _patches(task: Task) -> list[tuple[str, str]]:
    found = []
    for n in sorted(task.features):
        feature = task.feature(n)
        found += [(f"feature {n}'s tests", feature.tests_patch), (f"feature {n}'s gold patch", feature.gold_patch)]
    return found


def go(task: Task, base: Path) -> Requirement:
    need = Requirement("go")
    if m := GO_IMAGE.search(_dockerfile(task)):
        need.at_least(parse(m.group(1)), "its image")
    if (mod := _text(base / "go.mod")) and (m := GO_LINE.search(mod)):
        need.at_least(parse(m.group(1)), "go.mod")
    for source, patch in _patches(task):
        for constraint in GO_BUILD.findall(patch):
            for minor in GO_RELEASE.findall(constraint):
                need.at_least((1, int(minor)), f"//go:build in {source}")
    return need


def node(task: Task, base: Path) -> Requirement:
    need = Requirement("node")
    if m := NODE_IMAGE.search(_dockerfile(task)):
        need.at_least(parse(m.group(1))[:1], "its image")
    engines = _package_json(base).get("engines")
    engines = engines.get("node") if isinstance(engines, dict) else None
    if isinstance(engines, str) and (m := re.search(r">=?\s*v?(\d+(?:\.\d+)*)", engines)):
        need.at_least(parse(m.group(1))[:1], "package.json engines")
    return need


def pnpm(task: Task, base: Path) -> Requirement:
    need = Requirement("pnpm")
    manager = _package_json(base).get("packageManager")
    if isinstance(manager, str) and (m := re.fullmatch(r"pnpm@(\d+\.\d+\.\d+)(\+.*)?", manager)):
        need.exact = m.group(1)
        need.why.append(f"package.json packageManager: {manager}")
        return need
    if (lock := _text(base / "pnpm-lock.yaml")) and (m := LOCKFILE.search(lock)):
        major = int(m.group(1))
        need.line = major if major >= 9 else {5: 7, 6: 8}.get(major, major)  # lockfile v6 is pnpm 8's
        need.why.append(f"pnpm-lock.yaml lockfileVersion {m.group(1)}: pnpm {need.line}")
    return need


def _package_json(base: Path) -> dict:
    try:
        data = json.loads(_text(base / "package.json") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


DECLARED = {"go": go, "node": node, "pnpm": pnpm}  # what a task declares of each toolchain the farm provides
