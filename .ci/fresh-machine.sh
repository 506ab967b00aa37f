#!/usr/bin/env bash
# The README's quick start as a new user meets it: a container of plain Debian with python3,
# python3-venv and git and nothing else (no pytest, no pip outside the venv, no Redis, no
# bubblewrap), this checkout copied in, a virtual environment, the README's install command
# alone, then its run commands. Fails unless the totals are the README's, and unless an LLM
# agent is refused up front (no bubblewrap to confine it) with nothing recorded.
#
#   bash .ci/fresh-machine.sh        # after .ci/podman.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=/etc/cooperbench/containers.conf
BASE=${COOPERBENCH_BASE_IMAGE:-cooperbench-base:bookworm}
FRESH=localhost/cooperbench-fresh:bookworm
say() { echo "fresh-machine: $*"; }

if ! podman image exists "$FRESH"; then
  ctx=$(mktemp -d)
  # the base image has pip and pytest system-wide for the docker backend's tests: a new user's has neither
  printf '%s\n' "FROM $BASE" \
    "RUN dpkg --purge python3-pytest python3-pip >/dev/null && apt-get autoremove -y -qq --purge >/dev/null" \
    > "$ctx/Containerfile"
  podman build -q -t "$FRESH" "$ctx" >/dev/null
  rm -rf "$ctx"
fi

# pip's download cache survives between runs (what it caches is what PyPI serves anyway)
cache=/var/cache/cooperbench-ci/pip
mkdir -p "$cache"
# the machine's CA bundle: package registries are reached through it here, as the host's pip is told
ca=$(python3 -c 'import ssl; print(ssl.get_default_verify_paths().openssl_cafile)')
[ -f "${PIP_CERT:-}" ] && ca=$PIP_CERT

git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | \
podman run --rm -i -v "$cache:/root/.cache/pip" -v "$ca:/etc/cooperbench-ca.pem:ro" \
  -e PIP_CERT=/etc/cooperbench-ca.pem -e PIP_DISABLE_PIP_VERSION_CHECK=1 "$FRESH" bash -c '
set -euo pipefail
mkdir /home/newuser && cd /home/newuser && tar -xf -
for tool in bwrap redis-server pytest pip3; do
  if command -v $tool >/dev/null; then echo "fresh-machine: $tool is installed: not a fresh machine"; exit 1; fi
done
python3 -c "import pytest" 2>/dev/null && { echo "fresh-machine: pytest importable"; exit 1; }
python3 -m venv .venv && . .venv/bin/activate
pip install -q -e . >/tmp/pip.log 2>&1 || { tail -30 /tmp/pip.log; exit 1; }

expect() {  # expect TOTALS COMMAND...: run a README command; its totals line must say TOTALS
  local want=$1; shift
  echo "fresh-machine: $*"
  local rc=0; "$@" >/tmp/out 2>/tmp/err || rc=$?
  tail -n 4 /tmp/out; tail -n 3 /tmp/err
  grep -q "both passed: $want" /tmp/out || { echo "fresh-machine: expected both passed: $want (exit $rc)"; exit 1; }
  [ $rc -eq 0 ] || { echo "fresh-machine: exit $rc"; exit 1; }
}
expect "25/30" cooperbench run -n demo -a gold
expect "30/30" cooperbench run -n demo-solo -a gold --setting solo

echo "fresh-machine: cooperbench run -n llm -a mini_swe_agent  (must be refused: nothing to confine it with)"
rc=0; cooperbench run -n llm -a mini_swe_agent >/tmp/out 2>/tmp/err || rc=$?
cat /tmp/err
[ $rc -ne 0 ] || { echo "fresh-machine: an LLM agent ran unconfined"; exit 1; }
[ "$(wc -l </tmp/err)" -eq 1 ] && grep -q "bubblewrap" /tmp/err || { echo "fresh-machine: not a one-line refusal naming bubblewrap"; exit 1; }
recorded=$(cooperbench status -n llm --json 2>/dev/null || true)
[ -z "$recorded" ] || [ "$recorded" = "[]" ] || { echo "fresh-machine: the refused run recorded: $recorded"; exit 1; }
echo "fresh-machine: ok"
'
