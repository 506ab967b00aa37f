#!/bin/sh
# The worker image's entry point: `worker`, `flower` or `exporter`, configured from the
# environment (the compose file's farm.env). Broker and database URLs are made from
# REDIS_PASSWORD / POSTGRES_PASSWORD unless COOPERBENCH_BROKER_URL / COOPERBENCH_DB_URL are given.
set -eu
: "${REDIS_HOST:=redis}" "${POSTGRES_HOST:=postgres}" "${POSTGRES_USER:=cooperbench}" "${POSTGRES_DB:=cooperbench}"
if [ -z "${COOPERBENCH_BROKER_URL:-}" ]; then
  COOPERBENCH_BROKER_URL="redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD or COOPERBENCH_BROKER_URL}@${REDIS_HOST}:6379/0"
fi
if [ -z "${COOPERBENCH_DB_URL:-}" ]; then
  COOPERBENCH_DB_URL="postgresql+psycopg://${POSTGRES_USER}:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD or COOPERBENCH_DB_URL}@${POSTGRES_HOST}:5432/${POSTGRES_DB}"
fi
export COOPERBENCH_BROKER_URL COOPERBENCH_DB_URL

role=${1:-worker}
[ $# -gt 0 ] && shift
case "$role" in
  worker)
    # SIGTERM (compose stop, scale down) becomes Celery's cold shutdown with a soft timeout:
    # running tasks get COOPERBENCH_SOFT_SHUTDOWN_TIMEOUT seconds, then go back to the queue
    # (acks_late) at once rather than after the broker's visibility timeout.
    export REMAP_SIGTERM="${REMAP_SIGTERM:-SIGQUIT}"
    export COOPERBENCH_SOFT_SHUTDOWN_TIMEOUT="${COOPERBENCH_SOFT_SHUTDOWN_TIMEOUT:-8}"  # under the engine's 10 s stop timeout
    exec celery -A cooperbench worker --loglevel "${LOGLEVEL:-INFO}" -c "${WORKER_CONCURRENCY:-2}" "$@" ;;
  flower)
    # Never an open dashboard: Flower's API can revoke tasks and shut workers down.
    if [ -z "${FLOWER_BASIC_AUTH:-}" ] && [ -z "${FLOWER_AUTH:-}" ]; then
      echo "farm-entrypoint: refusing to start Flower without FLOWER_BASIC_AUTH (user:password) or FLOWER_AUTH (OAuth)" >&2
      exit 2
    fi
    exec celery -A cooperbench flower --port=5555 --address=0.0.0.0 "$@" ;;
  exporter)
    exec cooperbench deploy queue-metrics --port 9808 "$@" ;;
  *)
    exec "$role" "$@" ;;
esac
