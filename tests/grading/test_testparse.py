"""Tests for cooperbench.grading.testparse against real captured outputs of pytest, go, cargo, jest and vitest.

Every file in tests/grading/fixtures/test_outputs/ was produced on a real machine with ``cmd > file 2>&1``
(pytest 9.0.3, go 1.19, cargo 1.95, jest 30 / vitest 3.2.7 under node 20); the exit code observed
is recorded in the table below. The "npm warn ..." first line of the JS captures is genuine noise.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cooperbench.grading.testparse import TestCounts, feature_passed, parse_test_output

FIXTURES = Path(__file__).parent / "fixtures" / "test_outputs"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# file, observed exit code, (framework, passed, failed, skipped), feature passed?
CASES = [
    # pytest
    ("pytest_all_pass_q.txt", 0, ("pytest", 5, 0, 1), True),
    ("pytest_all_pass_v.txt", 0, ("pytest", 5, 0, 1), True),
    ("pytest_mixed_v.txt", 1, ("pytest", 3, 2, 2), False),  # pass, fail, setup error, skip, xfail, xpass
    ("pytest_mixed_q.txt", 1, ("pytest", 3, 2, 2), False),
    ("pytest_mixed_q_color.txt", 1, ("pytest", 3, 2, 2), False),  # --color=yes -rA
    ("pytest_collection_error.txt", 2, ("pytest", 0, 1, 0), False),  # interrupted collection
    ("pytest_collection_error_continue.txt", 1, ("pytest", 1, 1, 0), False),
    ("pytest_no_tests.txt", 5, ("pytest", 0, 0, 0), False),  # "no tests ran"
    ("pytest_noise_two_runs.txt", 0, ("pytest", 3, 0, 1), True),  # git apply, failed pip, -v + -q runs
    # go test
    ("go_test_pass.txt", 0, ("go", 2, 0, 0), True),  # ./..., 2 ok packages + [no test files]
    ("go_test_cached.txt", 0, ("go", 2, 0, 0), True),  # ok ... (cached)
    ("go_test_pass_v.txt", 0, ("go", 3, 0, 1), True),  # -v with subtests and a t.Skip
    ("go_test_fail.txt", 1, ("go", 2, 2, 0), False),
    ("go_test_fail_v.txt", 1, ("go", 4, 2, 1), False),
    ("go_test_panic.txt", 1, ("go", 0, 1, 0), False),
    ("go_build_failed.txt", 2, ("go", 2, 1, 0), False),  # FAIL pkg [build failed]
    ("go_no_test_files.txt", 0, ("go", 0, 0, 0), False),  # exit 0 but nothing ran
    # cargo test
    ("cargo_test_multi_binary.txt", 0, ("cargo", 6, 0, 1), True),  # unit + integration + doc-tests
    ("cargo_test_fail.txt", 101, ("cargo", 4, 2, 1), False),  # --no-fail-fast
    ("cargo_test_fail_color.txt", 101, ("cargo", 3, 1, 1), False),  # --color always -- --color always
    ("cargo_compile_error.txt", 101, ("cargo", 0, 1, 0), False),
    # jest
    ("jest_pass.txt", 0, ("jest", 3, 0, 1), True),
    ("jest_fail.txt", 1, ("jest", 3, 2, 2), False),  # includes a todo
    ("jest_fail_color.txt", 1, ("jest", 3, 2, 2), False),  # FORCE_COLOR=1
    ("jest_suite_error.txt", 1, ("jest", 3, 1, 1), False),  # "Test suite failed to run", Tests line all green
    ("jest_no_tests.txt", 1, ("jest", 0, 0, 0), False),
    # vitest
    ("vitest_pass.txt", 0, ("vitest", 3, 0, 1), True),
    ("vitest_pass_color.txt", 0, ("vitest", 3, 0, 1), True),  # FORCE_COLOR=1
    ("vitest_fail.txt", 1, ("vitest", 3, 2, 2), False),
    ("vitest_fail_color.txt", 1, ("vitest", 3, 2, 2), False),  # FORCE_COLOR=1
    ("vitest_suite_error.txt", 1, ("vitest", 1, 1, 0), False),  # a file failed to import
    ("vitest_no_tests.txt", 1, ("vitest", 0, 0, 0), False),
]


@pytest.mark.parametrize(("name", "exit_code", "expected", "passes"), CASES, ids=[c[0] for c in CASES])
def test_real_outputs(name, exit_code, expected, passes):
    output = fixture(name)
    assert parse_test_output(output) == TestCounts(*expected)
    assert feature_passed(exit_code, output) is passes


def test_every_fixture_is_in_the_table():
    assert sorted(p.name for p in FIXTURES.glob("*.txt")) == sorted(c[0] for c in CASES)
    assert all((FIXTURES / c[0]).stat().st_size < 20_000 for c in CASES)


def test_colour_fixtures_really_contain_ansi():
    for name in (
        "pytest_mixed_q_color.txt",
        "jest_fail_color.txt",
        "vitest_fail_color.txt",
        "cargo_test_fail_color.txt",
    ):
        assert "\x1b[" in fixture(name)


def test_noise_before_output_is_ignored():
    noise = (
        "Checking patch src/app.py...\nApplied patch src/app.py cleanly.\n"
        "Collecting requests\n  Downloading requests-2.32.3-py3-none-any.whl (64 kB)\n"
        "Installed 12 packages in 1.3s\nSuccessfully installed requests-2.32.3\nok\nFAIL\n"
    )
    assert parse_test_output(noise) == TestCounts("unknown", 0, 0, 0)
    output = noise + fixture("go_test_fail_v.txt")
    assert parse_test_output(output) == TestCounts("go", 4, 2, 1)


def test_two_pytest_runs_are_summed():
    output = fixture("pytest_all_pass_q.txt") + fixture("pytest_mixed_v.txt")
    assert parse_test_output(output) == TestCounts("pytest", 8, 2, 3)
    assert not feature_passed(0, output)


def test_several_cargo_and_go_runs_are_summed():
    cargo = fixture("cargo_test_multi_binary.txt") * 2
    assert parse_test_output(cargo) == TestCounts("cargo", 12, 0, 2)
    go = fixture("go_test_pass_v.txt") + fixture("go_build_failed.txt")
    assert parse_test_output(go) == TestCounts("go", 5, 1, 1)


def test_several_frameworks_are_summed_and_joined():
    output = fixture("pytest_all_pass_v.txt") + fixture("jest_fail.txt")
    assert parse_test_output(output) == TestCounts("pytest+jest", 8, 2, 3)


def test_ansi_is_stripped():
    output = "\x1b[31m\x1b[1m2 failed\x1b[0m, \x1b[32m7 passed\x1b[0m\x1b[31m in 1.20s\x1b[0m\n"
    assert parse_test_output(output) == TestCounts("pytest", 7, 2, 0)
    vitest = "\x1b[2m      Tests \x1b[22m \x1b[1m\x1b[32m4 passed\x1b[39m\x1b[22m\x1b[90m (4)\x1b[39m"
    files = "\x1b[2m Test Files \x1b[22m 1 passed (1)\n"
    assert parse_test_output(files + vitest) == TestCounts("vitest", 4, 0, 0)


def test_carriage_returns_are_line_breaks():
    assert parse_test_output("collecting...\r3 passed in 0.10s\r\n") == TestCounts("pytest", 3, 0, 0)


def test_empty_output_is_unknown():
    assert parse_test_output("") == TestCounts("unknown", 0, 0, 0)
    assert not feature_passed(0, "")


def test_exit_zero_but_zero_tests_does_not_pass():
    assert not feature_passed(0, fixture("go_no_test_files.txt"))
    assert not feature_passed(0, "============ no tests ran in 0.01s ============\n")
    assert not feature_passed(0, "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out")


def test_exit_zero_but_failures_parsed_does_not_pass():
    # e.g. a script that runs pytest twice and forgets to propagate the first exit code
    assert not feature_passed(0, fixture("pytest_mixed_q.txt") + fixture("pytest_all_pass_q.txt"))
    assert not feature_passed(0, fixture("vitest_suite_error.txt"))


def test_non_zero_exit_never_passes():
    assert parse_test_output(fixture("pytest_all_pass_q.txt")).failed == 0
    assert not feature_passed(1, fixture("pytest_all_pass_q.txt"))


def test_pytest_errors_only_and_warnings():
    assert parse_test_output("==== 3 errors in 0.5s ====") == TestCounts("pytest", 0, 3, 0)
    summary = "4 passed, 2 deselected, 1 warning in 0.50s (0:00:00)"
    assert parse_test_output(summary) == TestCounts("pytest", 4, 0, 0)


def test_go_no_tests_to_run():
    assert parse_test_output("ok  \texample.com/m\t0.002s [no tests to run]\n") == TestCounts("go", 0, 0, 0)


def test_go_package_with_only_skips_has_no_passes():
    output = "=== RUN   TestX\n--- SKIP: TestX (0.00s)\nPASS\nok  \texample.com/m\t0.002s\n"
    assert parse_test_output(output) == TestCounts("go", 0, 0, 1)
    assert not feature_passed(0, output)


# --- properties ---------------------------------------------------------------------------------------

FIXTURE_LINES = sorted({line for p in FIXTURES.glob("*.txt") for line in fixture(p.name).splitlines()})


def check_sane(output: str) -> None:
    counts = parse_test_output(output)
    assert min(counts.passed, counts.failed, counts.skipped) >= 0
    assert counts.framework
    assert isinstance(feature_passed(0, output), bool)


@settings(max_examples=150, deadline=None, database=None)
@given(st.text())
def test_never_raises_on_arbitrary_text(output):
    check_sane(output)


@settings(max_examples=150, deadline=None, database=None)
@given(st.binary())
def test_never_raises_on_random_bytes(raw):
    check_sane(raw.decode("utf-8", errors="replace"))


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.sampled_from(FIXTURE_LINES) | st.text(max_size=30), max_size=40))
def test_never_raises_on_shuffled_real_lines(lines):
    check_sane("\n".join(lines))
