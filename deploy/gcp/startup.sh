#!/bin/bash
# GCE startup script: turns a fresh Debian 12 VM into a CooperBench farm worker.
#
# Runs as root at every boot. Reads its configuration from the instance's metadata attributes
# (`cooperbench deploy gcp` sets them):
#   cooperbench-broker-url      Redis URL of the farm's broker (required)
#   cooperbench-db-url          SQLAlchemy URL of the results database (required)
#   cooperbench-source          what to pip-install: git+https://host/cooperbench-farm@ref, a wheel URL or path (required)
#   cooperbench-concurrency     worker processes (default: the VM's CPUs, at least 2)
#   cooperbench-dataset-dir     the dataset's path on the VM, as submitters name it (default /data/cooperbench/dataset)
#   cooperbench-dataset-source  gs://bucket/folder or https://...tar.gz copied there when missing (optional)
#   cooperbench-logs-dir        the artifact store: gs://BUCKET/PREFIX, shared by the fleet and its submitters
#                               (`deploy gcp --artifacts`), or a folder (default /data/cooperbench/logs)
#   cooperbench-soft-shutdown   seconds running tasks get at shutdown before going back to the queue (default 20)
#   cooperbench-env             extra KEY=VALUE lines for the worker's environment (API keys...) (optional)
# from the metadata server (GCE_METADATA_HOST overrides its host[:port], as in Google's libraries).
#
# The worker runs as the systemd unit cooperbench-worker (or in the foreground where systemd is not
# PID 1, e.g. a container). On preemption or shutdown it gets SIGTERM, which REMAP_SIGTERM=SIGQUIT
# makes Celery's cold shutdown with a soft timeout: running tasks get cooperbench-soft-shutdown
# seconds, then are cancelled and, acknowledged late, go straight back to the queue.
set -euo pipefail

MD="http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1/instance/attributes"
PREFIX=/opt/cooperbench
ENV_FILE=/etc/cooperbench/worker.env
log() { echo "cooperbench-startup: $*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }
if ! have curl; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; fi

# attr KEY [DEFAULT]: an attribute's value; without a default a missing attribute is fatal.
attr() {
  local value code
  value=$(curl -sS --retry 5 --retry-connrefused -H 'Metadata-Flavor: Google' -w '\n%{http_code}' "$MD/cooperbench-$1") \
    || { log "metadata server unreachable at $MD"; exit 1; }
  code=${value##*$'\n'}
  value=${value%$'\n'*}
  if [ "$code" = 200 ]; then printf '%s' "$value"
  elif [ "$code" = 404 ] && [ $# -gt 1 ]; then printf '%s' "$2"
  else log "metadata attribute cooperbench-$1 is missing (HTTP $code)"; exit 1
  fi
}

BROKER_URL=$(attr broker-url)
DB_URL=$(attr db-url)
SOURCE=$(attr source)
CPUS=$(nproc)
CONCURRENCY=$(attr concurrency "$(( CPUS < 2 ? 2 : CPUS ))")
DATASET_DIR=$(attr dataset-dir /data/cooperbench/dataset)
DATASET_SOURCE=$(attr dataset-source "")
LOGS_DIR=$(attr logs-dir /data/cooperbench/logs)
SOFT_SHUTDOWN=$(attr soft-shutdown 20)
EXTRA_ENV=$(attr env "")

# 1. Packages: Python, git, bubblewrap (the local backend's confinement).
need=()
have git || need+=(git)
have bwrap || need+=(bubblewrap)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" ca-certificates >/dev/null
fi

# 2. The project, in its own venv with uv; installed again only when the source changes.
if [ ! -x "$PREFIX/venv/bin/celery" ] || [ "$(cat "$PREFIX/source" 2>/dev/null)" != "$SOURCE" ]; then
  log "installing $SOURCE"
  python3 -m venv "$PREFIX/venv"
  "$PREFIX/venv/bin/pip" install -q uv
  VIRTUAL_ENV="$PREFIX/venv" "$PREFIX/venv/bin/uv" pip install -q "$SOURCE" pytest  # pytest: the bundled runners call `python -m pytest`
  printf '%s' "$SOURCE" > "$PREFIX/source"
fi

# 3. The dataset, at the path submitters name.
if [ ! -d "$DATASET_DIR" ] && [ -n "$DATASET_SOURCE" ]; then
  log "copying the dataset from $DATASET_SOURCE"
  mkdir -p "$DATASET_DIR"
  case "$DATASET_SOURCE" in
    gs://*) gcloud storage cp -r "${DATASET_SOURCE%/}/*" "$DATASET_DIR/" ;;
    *) curl -sSfL "$DATASET_SOURCE" | tar -xz -C "$DATASET_DIR" --strip-components=1 ;;
  esac
fi
[ -d "$DATASET_DIR" ] || log "warning: no dataset at $DATASET_DIR"

# 4. The worker's environment (secrets: readable by root only).
mkdir -p /etc/cooperbench /var/lib/cooperbench
case "$LOGS_DIR" in
  *://*) STORE_LINES="COOPERBENCH_ARTIFACTS=$LOGS_DIR"$'\n'"COOPERBENCH_LOGS=/var/lib/cooperbench/logs" ;;  # a bucket
  *) mkdir -p "$LOGS_DIR"; STORE_LINES="COOPERBENCH_LOGS=$LOGS_DIR" ;;
esac
umask 077
cat > "$ENV_FILE" <<ENV
COOPERBENCH_BROKER_URL=$BROKER_URL
COOPERBENCH_DB_URL=$DB_URL
COOPERBENCH_DATASET=$DATASET_DIR
$STORE_LINES
COOPERBENCH_CACHE=/var/lib/cooperbench/cache
COOPERBENCH_CONCURRENCY=$CONCURRENCY
COOPERBENCH_SOFT_SHUTDOWN_TIMEOUT=$SOFT_SHUTDOWN
REMAP_SIGTERM=SIGQUIT
$EXTRA_ENV
ENV
umask 022
WORKER=("$PREFIX/venv/bin/celery" -A cooperbench worker --loglevel INFO -n "cooperbench@$(hostname)")

# 5. Start it: a systemd unit on a VM, the foreground elsewhere.
if [ -d /run/systemd/system ]; then
  cat > /etc/systemd/system/cooperbench-worker.service <<UNIT
[Unit]
Description=CooperBench farm worker
After=network-online.target
Wants=network-online.target

[Service]
EnvironmentFile=$ENV_FILE
Environment=PATH=$PREFIX/venv/bin:/usr/local/bin:/usr/bin:/bin
WorkingDirectory=/var/lib/cooperbench
ExecStart=${WORKER[*]}
KillMode=mixed
TimeoutStopSec=$(( SOFT_SHUTDOWN + 8 ))
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable --now cooperbench-worker.service
  log "worker started (systemctl status cooperbench-worker)"
else
  log "no systemd: running the worker in the foreground"
  while IFS= read -r line; do [[ "$line" == *=* && "$line" != \#* ]] && export "$line"; done < "$ENV_FILE"
  cd /var/lib/cooperbench
  export PATH="$PREFIX/venv/bin:$PATH"
  exec "${WORKER[@]}"
fi
