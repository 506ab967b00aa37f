#!/usr/bin/env bash
# In-image test runner (Docker ENTRYPOINT).
#
#   runner.sh <tests.patch> [feature.patch]
#
# Patch arguments are file names under /patches/ (absolute paths are used
# as given). The repository lives at /workspace/repo. The feature patch (if
# any) and the tests patch are applied, pytest runs on the test files the
# tests patch touches, and the repository is reset on exit.
set -euo pipefail

REPO=${REPO_DIR:-/workspace/repo}
PATCH_DIR=${PATCH_DIR:-/patches}

die() { echo "runner.sh: error: $*" >&2; exit 2; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: runner.sh <tests.patch> [feature.patch]"

resolve() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PATCH_DIR" "$1" ;; esac; }

TESTS_PATCH=$(resolve "$1")
FEATURE_PATCH=""
if [ $# -eq 2 ]; then FEATURE_PATCH=$(resolve "$2"); fi

[ -f "$TESTS_PATCH" ] || die "tests patch not found: $TESTS_PATCH"
if [ -n "$FEATURE_PATCH" ] && [ ! -f "$FEATURE_PATCH" ]; then die "feature patch not found: $FEATURE_PATCH"; fi

cd "$REPO" || die "repository not found: $REPO"

cleanup() {
    git reset --hard -q >/dev/null 2>&1 || true
    git clean -fdq >/dev/null 2>&1 || true
}
trap cleanup EXIT

apply_patch() {
    if ! grep -q '[^[:space:]]' "$1"; then
        echo "runner.sh: note: $1 is empty, nothing to apply" >&2
        return 0
    fi
    git apply "$1" 2>/dev/null || git apply --3way "$1" || die "patch does not apply: $1"
}

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
