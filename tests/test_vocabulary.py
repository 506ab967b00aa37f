"""The package speaks one vocabulary: each status, artifact file name and setting has one home.

- statuses and error kinds: `cooperbench/statuses.py` (StrEnums whose values are the stored strings);
- artifact file names of a pair's folder: `cooperbench/store/artifacts.py` (`PairPaths`);
- `COOPERBENCH_*` environment variables: `cooperbench/settings.py` (the settings table).

These tests read the source: a status written as a bare string, a file name spelled in a
second module, or an environment variable read outside the table fails them.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from cooperbench import statuses
from cooperbench.statuses import AgentStatus, ErrorKind, MergeStatus, PairStatus, PatchState
from cooperbench.store.artifacts import PairPaths

from .conftest import ROOT

PACKAGE = ROOT / "cooperbench"
SOURCES = sorted(PACKAGE.rglob("*.py")) + [ROOT / "celeryconfig.py"]
STATUS_VALUES = {m.value for enum in vars(statuses).values() if isinstance(enum, type) and issubclass(enum, str)
                 and enum is not str for m in enum}  # fmt: skip


def _status_literals(path: Path) -> list[str]:
    """String literals in `path` used as a status: compared with, returned, or passed as a value.

    Dictionary keys, subscripts, `.get("key")` and the left side of `"key" in mapping` name a
    field, not a status, and are not counted."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            skip.update(id(k) for k in node.keys if k is not None)
        elif isinstance(node, ast.Subscript):
            skip.add(id(node.slice))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop"):
            skip.update(id(a) for a in node.args[:1])
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            skip.add(id(node.left))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip.add(id(node.value))  # docstrings
        elif isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)  # pieces of an f-string: text, not a value
            skip.update(id(v.value) for v in node.values if isinstance(v, ast.FormattedValue))  # padded headers
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:  # command names and options of the CLI
                if isinstance(decorator, ast.Call):
                    skip.update(id(a) for a in decorator.args)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if node.value in STATUS_VALUES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    return found


def test_no_status_is_spelled_outside_statuses_py():
    found = [hit for path in SOURCES if path.name != "statuses.py" for hit in _status_literals(path)]
    # "agent" is also the ordinary word for an agent (a sandbox's role, a git identity, a setting's
    # name): too common to tell apart by reading, so ErrorKind.AGENT alone is not checked here
    allowed = {"agent"}
    found = [hit for hit in found if hit.rsplit(": ", 1)[1].strip("'") not in allowed]
    assert found == []


def test_the_vocabulary_is_the_stored_strings():
    """Existing databases and JSON outputs hold these exact strings."""
    assert [s.value for s in AgentStatus] == ["Submitted", "LimitsExceeded", "Error", "InfraError", "Skipped"]
    assert [s.value for s in PairStatus] == ["queued", "done", "error", "skipped"]
    assert [s.value for s in ErrorKind] == ["infra", "agent", "input", "budget", "evaluation"]
    assert [s.value for s in MergeStatus] == ["clean", "conflicts", "missing_input", "error"]
    assert [s.value for s in PatchState] == ["applied", "skipped", "failed", "missing"]
    assert json.dumps({"status": PairStatus.DONE}) == '{"status": "done"}'
    assert PairStatus.after(ErrorKind.INFRA) == "error" and PairStatus.after("budget") == "skipped"
    assert PairStatus.after(None) == "done" and PairStatus.after(ErrorKind.AGENT) == "done"


ARTIFACT_NAMES = re.compile(r"result\.json|messages\.json|trajectory\.json|feature\{?[\w.]*\}?\.log|/ *[\"']eval[\"']")


def test_no_artifact_file_name_is_spelled_outside_pair_paths():
    home = PACKAGE / "store" / "artifacts.py"
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in SOURCES
        if path != home
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ARTIFACT_NAMES.search(line)
    ]
    assert found == []


def test_pair_paths_names_every_artifact():
    paths = PairPaths.of("exp", "textkit_task/task0/f1-f2")
    base = "exp/textkit_task/task0/f1-f2"
    assert paths.patch("agent1") == f"{base}/agent1.patch"
    assert paths.trajectory("solo") == f"{base}/solo.trajectory.json"
    assert (paths.messages, paths.result) == (f"{base}/messages.json", f"{base}/result.json")
    assert paths.eval_log(3) == f"{base}/eval/feature3.log"


def test_no_environment_variable_of_the_farm_is_read_outside_the_settings_table():
    home = PACKAGE / "settings.py"
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in SOURCES
        if path != home
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "COOPERBENCH_" in line
    ]
    assert found == []
