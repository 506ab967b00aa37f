#!/usr/bin/env bash
# setup.sh [dir]: clone upstream.bundle (next to this script) into <dir>
# (default: ./repo) and check out the task's base commit on branch "base".
set -euo pipefail

BASE_SHA=5ed5f1b3b2392027d2685483c6f374f1c13d2dcc
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEST=${1:-repo}

[ -e "$DEST" ] && { echo "setup.sh: error: $DEST already exists" >&2; exit 1; }
git clone -q "$HERE/upstream.bundle" "$DEST"
git -C "$DEST" checkout -q -b base "$BASE_SHA"
echo "$DEST: checked out base commit $BASE_SHA on branch 'base'"
