"""Reading unified git diffs: split into per-file sections, name the files, drop test files.

Agents may edit tests while they work; evaluation must run the benchmark's own tests,
so test-file sections are removed from agent patches before merging.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = re.compile(r"^diff --git (?P<a>\"?a/.*?\"?) (?P<b>\"?b/.*\"?)$")


@dataclass(frozen=True)
class FileDiff:
    path: str  # the file's path after the change (before it, for a deletion)
    text: str  # the whole section, from its `diff --git` line


def _unquote(name: str) -> str:
    name = name.strip('"')
    return name[2:] if name[:2] in ("a/", "b/") else name


def split_patch(patch: str) -> list[FileDiff]:
    """Split a `git diff` into one section per file; text before the first header is dropped."""
    sections: list[FileDiff] = []
    lines = patch.splitlines(keepends=True)
    start = None
    for i, line in enumerate(lines + ["diff --git a/ b/\n"]):
        if line.startswith("diff --git "):
            if start is not None:
                body = lines[start:i]
                sections.append(FileDiff(_section_path(body), "".join(body)))
            start = i
    return sections


def _section_path(body: list[str]) -> str:
    for line in body[1:]:
        if line.startswith("+++ ") and not line.startswith("+++ /dev/null"):
            return _unquote(line[4:].rstrip("\n").split("\t")[0])
        if line.startswith("rename to "):
            return line[len("rename to "):].rstrip("\n")
    for line in body[1:]:
        if line.startswith("--- ") and not line.startswith("--- /dev/null"):
            return _unquote(line[4:].rstrip("\n").split("\t")[0])
    m = _HEADER.match(body[0].rstrip("\n"))
    return _unquote(m.group("b")) if m else body[0].split()[-1]


def files_in(patch: str) -> list[str]:
    return [section.path for section in split_patch(patch)]


_TEST_DIRS = {"tests", "test", "__tests__", "testing"}
_TEST_FILE = re.compile(
    r"(^test_.*\.py$|.*_test\.py$|^conftest\.py$|.*_test\.go$|.*\.(test|spec)\.(ts|tsx|js|jsx|mjs|cjs|mts|cts)$)"
)


def is_test_path(path: str) -> bool:
    """True for test files of Python, Go, TypeScript/JavaScript and Rust projects."""
    parts = path.split("/")
    return any(p in _TEST_DIRS for p in parts[:-1]) or bool(_TEST_FILE.match(parts[-1]))


def drop_test_files(patch: str) -> str:
    """The patch without its test-file sections (an empty string if nothing else is left)."""
    kept = "".join(s.text for s in split_patch(patch) if not is_test_path(s.path))
    return kept if not kept or kept.endswith("\n") else kept + "\n"
