#!/usr/bin/env bash
# Host-side test runner for a CooperBench task.
#
#   run_tests.sh <repo_path> <tests.patch> [feature.patch]
#
# Applies the optional feature patch and then the tests patch to the git
# checkout at <repo_path> (git apply, falling back to git apply --3way) and
# runs pytest on exactly the test files that the tests patch touches.
# Exits with pytest's exit code; setup errors exit non-zero with a message.
set -euo pipefail

die() { echo "run_tests.sh: error: $*" >&2; exit 2; }

[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: run_tests.sh <repo_path> <tests.patch> [feature.patch]"

abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PWD" "$1" ;; esac; }

REPO=$1
TESTS_PATCH=$(abspath "$2")
FEATURE_PATCH=""
if [ $# -eq 3 ]; then FEATURE_PATCH=$(abspath "$3"); fi

[ -d "$REPO" ] || die "repository not found: $REPO"
[ -f "$TESTS_PATCH" ] || die "tests patch not found: $2"
if [ -n "$FEATURE_PATCH" ] && [ ! -f "$FEATURE_PATCH" ]; then die "feature patch not found: $3"; fi

apply_patch() {
    if ! grep -q '[^[:space:]]' "$1"; then
        echo "run_tests.sh: note: $1 is empty, nothing to apply" >&2
        return 0
    fi
    git apply "$1" 2>/dev/null || git apply --3way "$1" || die "patch does not apply: $1"
}

cd "$REPO"
git rev-parse --git-dir >/dev/null 2>&1 || die "not a git repository: $REPO"

if [ -n "$FEATURE_PATCH" ]; then apply_patch "$FEATURE_PATCH"; fi
apply_patch "$TESTS_PATCH"

TEST_FILES=()
while IFS= read -r f; do
    [ -n "$f" ] && TEST_FILES+=("$f")
done < <(sed -n 's#^+++ b/\(.*\)$#\1#p' "$TESTS_PATCH" | sed 's/\t.*$//' | grep '\.py$' | sort -u || true)
[ ${#TEST_FILES[@]} -gt 0 ] || die "no test files found in $TESTS_PATCH"

PY=python
command -v python >/dev/null 2>&1 || PY=python3

export PYTHONDONTWRITEBYTECODE=1
set +e
"$PY" -m pytest -v -p no:cacheprovider "${TEST_FILES[@]}"
rc=$?
set -e
exit $rc
