#!/usr/bin/env bash
# setup.sh [dir]: clone upstream.bundle (next to this script) into <dir>
# (default: ./repo) and check out the task's base commit on branch "base".
set -euo pipefail

BASE_SHA=dbe6c2ea3e210e411b02351a4f620fd51a7aed95
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEST=${1:-repo}

[ -e "$DEST" ] && { echo "setup.sh: error: $DEST already exists" >&2; exit 1; }
git clone -q "$HERE/upstream.bundle" "$DEST"
git -C "$DEST" checkout -q -b base "$BASE_SHA"
echo "$DEST: checked out base commit $BASE_SHA on branch 'base'"
