#!/usr/bin/env bash
# setup.sh [dir]: clone upstream.bundle (next to this script) into <dir>
# (default: ./repo) and check out the task's base commit on branch "base".
set -euo pipefail

BASE_SHA=513ffeeac63cac225e6f3537e89de4de8c6c8857
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEST=${1:-repo}

[ -e "$DEST" ] && { echo "setup.sh: error: $DEST already exists" >&2; exit 1; }
git clone -q "$HERE/upstream.bundle" "$DEST"
git -C "$DEST" checkout -q -b base "$BASE_SHA"
echo "$DEST: checked out base commit $BASE_SHA on branch 'base'"
