"""Reading unified git diffs: split into per-file sections, name the files, drop test files.

Agents may edit tests while they work; evaluation must run the benchmark's own tests,
so test-file sections are removed from agent patches before merging.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class FileDiff:
    path: str  # the file's path after the change (before it, for a deletion)
    text: str  # the whole section, from its `diff --git` line


_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")
_ESCAPES = {"a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def unquote(text: str) -> tuple[str, str]:
    """Read one C-quoted name as git writes it (`"a/\\303\\251.py"`): (the name, the rest of the line)."""
    out = bytearray()
    i = 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return out.decode("utf-8", "surrogateescape"), text[i + 1 :]
        if c == "\\" and i + 1 < len(text):
            if re.match(r"[0-3][0-7]{2}", text[i + 1 : i + 4]):
                out.append(int(text[i + 1 : i + 4], 8))
                i += 4
                continue
            out += _ESCAPES.get(text[i + 1], text[i + 1]).encode("utf-8", "surrogateescape")
            i += 2
            continue
        out += c.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape"), ""


def line_name(value: str) -> str:
    """The name on a `---`/`+++`/`rename to` line (after its keyword): quoted or plain, a tab ends it."""
    value = value.rstrip("\n").rstrip("\r")
    return unquote(value)[0] if value.startswith('"') else value.split("\t")[0]


def header_names(rest: str) -> list[str]:
    """The names of `diff --git <a> <b>` (rest: after `diff --git `), with their a/ b/ prefixes.

    Plain names may hold spaces (even ` b/`); a section that is not a rename names the same
    file twice, which is how such a line is split (as git does)."""
    rest = rest.rstrip("\n").rstrip("\r")
    if rest.startswith('"'):
        first, rest = unquote(rest)
        rest = rest.lstrip(" ")
        return [first, unquote(rest)[0] if rest.startswith('"') else rest]
    if ' "' in rest:  # a plain first name, a quoted second one
        first, _, second = rest.partition(' "')
        return [first, unquote('"' + second)[0]]
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half] == " " and rest[2:half] == rest[half + 3 :]:
        return [rest[:half], rest[half + 1 :]]
    first, sep, second = rest.partition(" b/")
    return [first, "b/" + second] if sep else [rest]


def strip_prefix(name: str) -> str:
    return name[2:] if name[:2] in ("a/", "b/") else name


def lines(text: str) -> list[str]:
    """The lines of a patch as git reads them: split at \\n only (a lone \\r or \\f is content)."""
    return _LINE.findall(text)


def split_patch(patch: str) -> list[FileDiff]:
    """Split a `git diff` into one section per file; text before the first header is dropped."""
    sections: list[FileDiff] = []
    body_lines = lines(patch)
    start = None
    for i, line in enumerate(body_lines + ["diff --git a/ b/\n"]):
        if line.startswith("diff --git "):
            if start is not None:
                body = body_lines[start:i]
                sections.append(FileDiff(_section_path(body), "".join(body)))
            start = i
    return sections


def _section_path(body: list[str]) -> str:
    for line in body[1:]:
        if line.startswith("+++ ") and not line.startswith("+++ /dev/null"):
            return strip_prefix(line_name(line[4:]))
        if line.startswith("rename to ") or line.startswith("copy to "):
            return line_name(line.split(" to ", 1)[1])
        if line.startswith("@@") or line.startswith("GIT binary patch"):
            break
    for line in body[1:]:
        if line.startswith("--- ") and not line.startswith("--- /dev/null"):
            return strip_prefix(line_name(line[4:]))
        if line.startswith("@@") or line.startswith("GIT binary patch"):
            break
    return strip_prefix(header_names(body[0][len("diff --git ") :])[-1])


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
