#!/usr/bin/env bash
# Sets up a Docker-API container engine on a fresh Debian machine for the `docker` sandbox
# backend and its tests: Debian's podman serving the Docker API on a unix socket, and a
# local base image (Debian bookworm + python3, pytest, git) made with debootstrap, since
# no image registry is reachable, and from it a stand-in for Docker Hub's python:3.11-slim
# under a local mirror prefix (step 5). Idempotent: what is already there is reused.
#
#   bash .ci/podman.sh          # then: export DOCKER_HOST=unix:///run/cooperbench-podman.sock
#
# It exports nothing itself. Settings: COOPERBENCH_PODMAN_SOCKET (default
# /run/cooperbench-podman.sock), COOPERBENCH_BASE_IMAGE (default cooperbench-base:bookworm).
set -euo pipefail

SOCKET=${COOPERBENCH_PODMAN_SOCKET:-/run/cooperbench-podman.sock}
IMAGE=${COOPERBENCH_BASE_IMAGE:-cooperbench-base:bookworm}
CONF_DIR=/etc/cooperbench
CONF=$CONF_DIR/containers.conf
export CONTAINERS_CONF=$CONF
say() { echo "podman.sh: $*"; }

# 1. Packages.
need=()
for pair in podman:podman runc:runc debootstrap:debootstrap newuidmap:uidmap slirp4netns:slirp4netns \
            fuse-overlayfs:fuse-overlayfs; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
else
  say "podman, runc and debootstrap are installed"
fi

# 2. Engine settings: runc (crun is not in every image of this machine), no default ulimits
# (the sandbox's own limits would be refused by a nested kernel).
mkdir -p "$CONF_DIR"
cat > "$CONF.tmp" <<'EOF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
if ! cmp -s "$CONF.tmp" "$CONF" 2>/dev/null; then mv "$CONF.tmp" "$CONF"; say "wrote $CONF"; else rm -f "$CONF.tmp"; fi

# 3. The Docker-API service.
command -v curl >/dev/null || { apt-get update -qq; apt-get install -y -qq curl >/dev/null; }
alive() { curl -sf --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }
if alive; then
  say "the Docker API is served at unix://$SOCKET"
else
  rm -f "$SOCKET"
  say "starting podman system service at unix://$SOCKET (log: /var/log/cooperbench-podman.log)"
  nohup env CONTAINERS_CONF="$CONF" podman system service --time=0 "unix://$SOCKET" \
    >/var/log/cooperbench-podman.log 2>&1 </dev/null &
  for _ in $(seq 100); do alive && break; sleep 0.2; done
  alive || { say "the service did not start:"; tail -20 /var/log/cooperbench-podman.log; exit 1; }
fi

# 4. The base image: made once with debootstrap from the Debian mirror apt already uses.
if podman image exists "$IMAGE"; then
  say "base image $IMAGE exists"
else
  mirror=$(grep -rhoE '^(URIs:|deb) +(\[[^]]*\] +)?https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
           | grep -oE 'https?://[^ ]+' | head -1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  root=$(mktemp -d /var/tmp/cooperbench-base.XXXXXX)
  say "building $IMAGE with debootstrap from $mirror (about a minute)"
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,python3-pytest,git,ca-certificates \
    bookworm "$root" "$mirror" >/var/log/cooperbench-debootstrap.log 2>&1 \
    || { tail -20 /var/log/cooperbench-debootstrap.log; rm -rf "$root"; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null 2>&1
  rm -rf "$root"
  say "imported $IMAGE"
fi
# 5. A local registry mirror's stand-in for the published tasks' `FROM python:3.11-slim`:
# the base image with `python` and a pip that installs system-wide, as that image has them.
# With COOPERBENCH_REGISTRY_MIRROR=localhost/cooperbench-mirror the farm builds those
# Dockerfiles FROM it (a lab points the setting at its own mirror of Docker Hub instead).
MIRROR_PYTHON=localhost/cooperbench-mirror/library/python:3.11-slim
if podman image exists "$MIRROR_PYTHON"; then
  say "mirror image $MIRROR_PYTHON exists"
else
  ctx=$(mktemp -d)
  printf '%s\n' "FROM $IMAGE" \
    "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python-is-python3 python3-pip python3-venv >/dev/null && rm -rf /var/lib/apt/lists/* /usr/lib/python3*/EXTERNALLY-MANAGED" \
    > "$ctx/Containerfile"
  podman build -q -t "$MIRROR_PYTHON" "$ctx" >/dev/null || { rm -rf "$ctx"; say "cannot build $MIRROR_PYTHON"; exit 1; }
  rm -rf "$ctx"
  say "built $MIRROR_PYTHON"
fi
say "ready: export DOCKER_HOST=unix://$SOCKET"
