"""The package's rooms: each module says its job, and imports between rooms never go in a circle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "cooperbench"
# Each room may import only rooms after it (docs/architecture.md, "The map").
ORDER = ["cli", "deploy", "api", "report", "farm", "pair", "experiment", "environments", "agents", "grading", "sandbox",
         "team", "data", "store", "settings", "statuses", "errors"]  # fmt: skip


def _room(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def _imports(path: Path) -> set[str]:
    """The rooms `path` imports (relative imports within the package)."""
    package = path.relative_to(PACKAGE).parent.parts
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package)[: len(package) - node.level + 1]
            target = base + (node.module.split(".") if node.module else [])
            rooms.update([target[0]] if target else [a.name for a in node.names])
    return rooms - {_room(path)}


def test_every_module_starts_with_a_docstring_saying_its_job():
    missing = [
        str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if not ast.get_docstring(ast.parse(p.read_text()))
    ]
    assert missing == []


def test_rooms_import_only_the_rooms_after_them():
    uses: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue  # the package's front door names the API and the Celery app, lazily
        uses[_room(path)] |= _imports(path)
    assert set(uses) <= set(ORDER), f"a room missing from ORDER: {set(uses) - set(ORDER)}"
    upward = sorted(
        f"{room} -> {other}"
        for room, others in uses.items()
        for other in others
        if ORDER.index(other) < ORDER.index(room)
    )
    assert upward == []
