"""Refuse patches that could reach outside the repository before anything applies them.

`check_patch(text)` lists the problems of a unified diff (empty: safe to hand to `git apply`):
- a path that escapes the repository (`..` components, absolute paths) or lies inside a
  `.git` folder, in any `diff --git`, `---`/`+++`, `rename from/to`, `copy from/to` line;
- a symlink created (or retargeted) by the patch that points outside the repository or
  into `.git`, and a mode change that turns an existing file into a symlink;
- a patch larger than MAX_PATCH_BYTES, or one file section (or binary literal) larger
  than MAX_FILE_BYTES.

Git itself refuses most bad paths ("invalid path"), but not a new symlink to `/etc`, not
`--- /abs/path` in a plain diff (it strips the first component and writes inside the
repository), and not sizes; here every case gets one clear message of ours, and nothing
is ever written. The parser follows hunk line counts, so a removed line `-- x` (shown as
`--- x`) inside a hunk is content, not a header.
"""

from __future__ import annotations

import posixpath
import re

from ..errors import UserError
from ..statuses import PatchState
from .patchutil import header_names as _header_names
from .patchutil import line_name as _name
from .patchutil import lines
from .patchutil import strip_prefix as _strip_prefix

MAX_PATCH_BYTES = 20 * 1024 * 1024
MAX_FILE_BYTES = 10 * 1024 * 1024
SYMLINK_MODE = "120000"

_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_BINARY_SIZE = re.compile(r"^(?:literal|delta) (\d+)$")
_PATH_LINES = ("rename from ", "rename to ", "copy from ", "copy to ", "rename old ", "rename new ")


class PatchRejected(UserError):
    """A patch that must never be applied (its message is one line)."""


def path_problem(path: str, *, prefixed: bool) -> str | None:
    """Why `path` (as written in a patch) must not be touched, or None."""
    if path == "/dev/null":
        return None
    if path.startswith("/") or (prefixed and _strip_prefix(path).startswith("/")):
        return f"absolute path {path!r}"
    inner = _strip_prefix(path) if prefixed else path
    parts = inner.split("/")
    if ".." in parts:
        return f"path escapes the repository: {path!r}"
    if any(p.rstrip(". ").lower() == ".git" for p in parts):
        return f"path inside .git: {path!r}"
    if not inner.strip("/"):
        return f"empty path {path!r}"
    return None


def symlink_problem(link: str, target: str) -> str | None:
    """Why a symlink at `link` (repository path) pointing to `target` must not be created, or None."""
    if target.startswith("/"):
        return f"symlink {link!r} points outside the repository: {target!r}"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
    if resolved == ".." or resolved.startswith("../"):
        return f"symlink {link!r} points outside the repository: {target!r}"
    if any(p.rstrip(". ").lower() == ".git" for p in resolved.split("/")):
        return f"symlink {link!r} points into .git: {target!r}"
    return None


class _Section:
    def __init__(self, start: int):
        self.start = start
        self.size = 0
        self.path: str | None = None  # its path after the change
        self.symlink = False  # the new side is a symlink (new file or modified symlink)
        self.target: list[str] = []  # the symlink's new target, from the hunk's added lines
        self.has_hunk = False


def check_patch(text: str | bytes) -> list[str]:
    """Every reason not to apply this patch (one line each); an empty list if it is safe."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    problems: list[str] = []
    size = len(text.encode("utf-8", "surrogateescape"))
    if size > MAX_PATCH_BYTES:
        return [f"patch is {size} bytes, over the limit of {MAX_PATCH_BYTES}"]

    section: _Section | None = None
    old_left = new_left = 0  # lines still expected in the current hunk

    def close() -> None:
        if section is None:
            return
        where = section.path or "?"
        if section.size > MAX_FILE_BYTES:
            problems.append(f"section for {where!r} is {section.size} bytes, over the limit of {MAX_FILE_BYTES}")
        if section.symlink and section.path is not None:
            if section.has_hunk:
                problem = symlink_problem(section.path, "\n".join(section.target))
            else:
                problem = f"symlink {where!r} without a visible target"
            if problem:
                problems.append(problem)

    def path(value: str, line_no: int, *, prefixed: bool) -> str:
        problem = path_problem(value, prefixed=prefixed)
        if problem:
            problems.append(f"{problem} (line {line_no})")
        return value

    for no, line in enumerate(lines(text), 1):
        if section is not None:
            section.size += len(line.encode("utf-8", "surrogateescape"))
        if old_left > 0 or new_left > 0:  # inside a hunk: content, not headers
            tag = line[:1]
            if tag == "\\":
                continue
            if tag == "+":
                new_left -= 1
                if section is not None and section.symlink:
                    section.target.append(line[1:].rstrip("\n"))
                continue
            if tag == "-":
                old_left -= 1
                continue
            if tag == " " or line in ("\n", "\r\n"):
                old_left -= 1
                new_left -= 1
                continue
            old_left = new_left = 0  # a malformed hunk: read the line as a header
        if line.startswith("diff --git "):
            close()
            section = _Section(no)
            section.size = len(line.encode("utf-8", "surrogateescape"))
            names = [path(name, no, prefixed=True) for name in _header_names(line[len("diff --git ") :])]
            section.path = _strip_prefix(names[-1])
        elif line.startswith("--- ") or line.startswith("+++ "):
            if section is None or (line.startswith("--- ") and section.has_hunk):
                close()  # a plain (non-git) diff: each `---` starts a file
                section = _Section(no)
                section.size = len(line.encode("utf-8", "surrogateescape"))
            name = path(_name(line[4:]), no, prefixed=True)
            if line.startswith("+++ ") and name != "/dev/null":
                section.path = _strip_prefix(name)
        elif line.startswith(_PATH_LINES):
            key = next(p for p in _PATH_LINES if line.startswith(p))
            name = path(_name(line[len(key) :]), no, prefixed=False)
            if key in ("rename to ", "copy to ", "rename new ") and section is not None:
                section.path = name
        elif section is not None and line.startswith("new file mode "):
            section.symlink = line.split()[-1] == SYMLINK_MODE
        elif section is not None and line.startswith("new mode ") and line.split()[-1] == SYMLINK_MODE:
            problems.append(f"mode change turns {section.path or '?'!r} into a symlink (line {no})")
        elif section is not None and line.startswith("index ") and line.split()[-1] == SYMLINK_MODE:
            section.symlink = True  # an existing symlink gets a new target
        elif (m := _BINARY_SIZE.match(line.rstrip("\n"))) and section is not None:
            if int(m.group(1)) > MAX_FILE_BYTES:
                problems.append(
                    f"binary file {section.path or '?'!r} is {m.group(1)} bytes, over the limit of {MAX_FILE_BYTES}"
                )
        elif (m := _HUNK.match(line)) and section is not None:
            section.has_hunk = True
            old_left = int(m.group(1)) if m.group(1) is not None else 1
            new_left = int(m.group(2)) if m.group(2) is not None else 1
    close()
    return list(dict.fromkeys(problems))


def patch_error(text: str | bytes, what: str = "patch") -> str | None:
    """One line naming what is wrong with the patch (`what` names it), or None if it is safe."""
    problems = check_patch(text)
    if not problems:
        return None
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{what} rejected: {problems[0]}{more}"


def ensure_safe(text: str | bytes, what: str = "patch") -> None:
    """Raise PatchRejected (a UserError) with one clear line if the patch must not be applied."""
    error = patch_error(text, what)
    if error:
        raise PatchRejected(error)


class PatchStatus(str):
    """A `statuses.PatchState` that may carry why the patch failed.

    It is a plain string to everything that compares, stores or serializes it."""

    reason: str | None = None

    def __new__(cls, value: str, reason: str | None = None) -> PatchStatus:
        self = super().__new__(cls, value)
        self.reason = reason
        return self


def failed(reason: str) -> PatchStatus:
    return PatchStatus(PatchState.FAILED, reason)
