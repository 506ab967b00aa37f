"""Parse a test script's console output into pass/fail/skip counts and decide whether a feature passed.

Understands pytest, ``go test``, ``cargo test`` (libtest), jest and vitest. The output may carry noise
(pip logs, ``git apply`` messages, ANSI colours) and several runs; counts from every recognised run are
summed. When more than one framework is recognised their counts are summed too and the framework names
are joined with ``"+"`` (e.g. ``"pytest+jest"``), so a failure in any of them is never hidden.

Counting conventions:
- failed = failures + errors; a collection error, a Go ``[build failed]`` package, a cargo
  ``could not compile`` or a jest/vitest test file that failed to run each count as (at least) one failure.
- skipped includes pytest ``xfailed``, cargo ``ignored`` and jest/vitest ``todo``; a non-strict pytest
  ``xpassed`` counts as passed.
- go: top-level ``--- PASS/FAIL/SKIP`` lines (subtests are not counted separately); a package that reports
  ``ok`` without per-test lines (no ``-v``) counts as one passed test, a ``FAIL`` package without
  ``--- FAIL`` lines as one failed test.
- jest/vitest: a run's failures are max(failed tests, failed test files), so a file that failed to load
  counts even though none of its tests ran.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Counts = tuple[int, int, int]  # passed, failed, skipped


@dataclass(frozen=True)
class TestCounts:
    """What a test run reported; ``failed`` includes errors."""

    __test__ = False  # not a pytest test class

    framework: str  # "pytest" | "go" | "cargo" | "jest" | "vitest" | "unknown" | several joined with "+"
    passed: int
    failed: int
    skipped: int


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[()][0-9A-Za-z]|[@-Z\\-_])")


def _clean(output: str) -> str:
    """Drop ANSI escapes and turn carriage returns into line breaks."""
    return _ANSI.sub("", output).replace("\r\n", "\n").replace("\r", "\n")


def _tally(items: list[tuple[str, str]], kinds: dict[str, int]) -> list[int]:
    """Sum ``(count, word)`` pairs into [passed, failed, skipped] using ``kinds`` (word -> index)."""
    counts = [0, 0, 0]
    for number, word in items:
        if word in kinds:
            counts[kinds[word]] += int(number)
    return counts


def _add(a: Counts | list[int], b: Counts | list[int]) -> Counts:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


# --- pytest -------------------------------------------------------------------------------------------

_PYTEST_SUMMARY = re.compile(r"^=*[ \t]*(\d+ [a-z]+(?:, \d+ [a-z]+)*|no tests ran)[ \t]+in \d+(?:\.\d+)?s\b.*$", re.M)
_PYTEST_HEADER = re.compile(r"^=+ test session starts =+$", re.M)
_PYTEST_KINDS = {"passed": 0, "xpassed": 0, "failed": 1, "error": 1, "errors": 1, "skipped": 2, "xfailed": 2}
_PYTEST_WORDS = set(_PYTEST_KINDS) | {"deselected", "warning", "warnings", "rerun"}


def _parse_pytest(text: str) -> Counts | None:
    """Sum every final summary line (``1 failed, 2 passed, 1 error in 0.4s`` / ``no tests ran in 0.1s``)."""
    total: Counts | None = None
    for match in _PYTEST_SUMMARY.finditer(text):
        items = re.findall(r"(\d+) ([a-z]+)", match.group(1))
        if any(word not in _PYTEST_WORDS for _, word in items):
            continue  # e.g. "Installed 3 packages in 2s" from some installer
        total = _add(total or (0, 0, 0), _tally(items, _PYTEST_KINDS))
    if total is None and _PYTEST_HEADER.search(text):
        return (0, 0, 0)  # a session started but never summarised (crash, timeout)
    return total


# --- go test ------------------------------------------------------------------------------------------

_GO_CASE = re.compile(r"--- (PASS|FAIL|SKIP): \S")
_GO_PACKAGE = re.compile(r"(ok|FAIL)\s+\S+\s+(\(cached\)|\d+(?:\.\d+)?s|\[[^\]]*\])(.*)$")
_GO_NO_FILES = re.compile(r"\?\s+\S+\s+\[no test files\]")
_GO_KINDS = {"PASS": 0, "FAIL": 1, "SKIP": 2}


def _parse_go(text: str) -> Counts | None:
    """Walk package blocks: tally top-level ``--- X:`` lines until the package's ``ok``/``FAIL`` line."""
    found = False
    total: Counts = (0, 0, 0)
    block = [0, 0, 0]
    for line in text.splitlines():
        case = _GO_CASE.match(line)
        if case:
            block[_GO_KINDS[case.group(1)]] += 1
        elif _GO_NO_FILES.match(line):
            found = True
        elif package := _GO_PACKAGE.match(line):
            found = True
            status, detail = package.group(1), package.group(2) + package.group(3)
            if status == "ok" and not any(block) and "[no tests to run]" not in detail:
                block[0] = 1  # non-verbose run: only the package verdict is visible
            if status == "FAIL" and not block[1]:
                block[1] = 1  # build/setup failure, panic or non-verbose failure
            total = _add(total, block)
            block = [0, 0, 0]
    return total if found else None


# --- cargo test ---------------------------------------------------------------------------------------

_CARGO_RESULT = re.compile(r"^test result: (?:ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored;", re.M)
_CARGO_BUILD_ERROR = re.compile(r"^error: could not compile ", re.M)


def _parse_cargo(text: str) -> Counts | None:
    """Sum the ``test result:`` line of every test binary and doc-test run; each compile failure adds one."""
    results = _CARGO_RESULT.findall(text)
    build_errors = len(_CARGO_BUILD_ERROR.findall(text))
    if not results and not build_errors:
        return None
    total: Counts = (0, build_errors, 0)
    for passed, failed, ignored in results:
        total = _add(total, (int(passed), int(failed), int(ignored)))
    return total


# --- jest ---------------------------------------------------------------------------------------------

_JEST_SUMMARY = re.compile(r"^Test Suites:(.*)\nTests:(.*)$", re.M)
_JEST_NO_TESTS = re.compile(r"^No tests found, exiting with code", re.M)
_JS_KINDS = {"passed": 0, "failed": 1, "skipped": 2, "todo": 2}


def _parse_jest(text: str) -> Counts | None:
    """Sum ``Tests: 1 failed, 5 passed, 6 total`` lines; failed suites count when no test failed."""
    total: Counts | None = None
    for match in _JEST_SUMMARY.finditer(text):
        suites_failed = _tally(re.findall(r"(\d+) ([a-z]+)", match.group(1)), _JS_KINDS)[1]
        passed, failed, skipped = _tally(re.findall(r"(\d+) ([a-z]+)", match.group(2)), _JS_KINDS)
        total = _add(total or (0, 0, 0), (passed, max(failed, suites_failed), skipped))
    if total is None and _JEST_NO_TESTS.search(text):
        return (0, 0, 0)
    return total


# --- vitest -------------------------------------------------------------------------------------------

_VITEST_SUMMARY = re.compile(r"^[ \t]*Test Files[ \t]+(\S.*)\n[ \t]*Tests[ \t]+(\S.*)$", re.M)
_VITEST_ERRORS = re.compile(r"^[ \t]*Errors[ \t]+(\d+) errors?", re.M)
_VITEST_HEADER = re.compile(r"^[ \t]*RUN[ \t]+v\d+\.\d+", re.M)


def _parse_vitest(text: str) -> Counts | None:
    """Sum ``Tests  2 failed | 10 passed (12)`` lines; failed files and unhandled ``Errors`` are failures."""
    total: Counts | None = None
    for match in _VITEST_SUMMARY.finditer(text):
        files_failed = _tally(re.findall(r"(\d+) ([a-z]+)", match.group(1)), _JS_KINDS)[1]
        passed, failed, skipped = _tally(re.findall(r"(\d+) ([a-z]+)", match.group(2)), _JS_KINDS)
        total = _add(total or (0, 0, 0), (passed, max(failed, files_failed), skipped))
    errors = sum(int(n) for n in _VITEST_ERRORS.findall(text))
    if total is None and (errors or _VITEST_HEADER.search(text)):
        total = (0, 0, 0)
    return None if total is None else _add(total, (0, errors, 0))


# --- dispatcher ---------------------------------------------------------------------------------------

_PARSERS = (
    ("pytest", _parse_pytest),
    ("go", _parse_go),
    ("cargo", _parse_cargo),
    ("jest", _parse_jest),
    ("vitest", _parse_vitest),
)


def parse_test_output(output: str) -> TestCounts:
    """Counts from every recognised framework in ``output``; ``unknown`` with zeros if none is found."""
    text = _clean(output)
    names: list[str] = []
    total: Counts = (0, 0, 0)
    for name, parser in _PARSERS:
        counts = parser(text)
        if counts is not None:
            names.append(name)
            total = _add(total, counts)
    if not names:
        return TestCounts("unknown", 0, 0, 0)
    return TestCounts("+".join(names), *total)


def feature_passed(exit_code: int, output: str) -> bool:
    """A feature passes only if its test command exited 0 and reported >= 1 passed and 0 failed tests."""
    counts = parse_test_output(output)
    return exit_code == 0 and counts.passed >= 1 and counts.failed == 0
