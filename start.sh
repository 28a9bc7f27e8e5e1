#!/bin/sh
# The image's start, and CI's against its PostgreSQL: wait for the database, migrate, then gunicorn on
# HOST:PORT (0.0.0.0:8000) with WORKERS workers (2) and, unless AUTOPACK_TASK_WORKER=0 (a worker runs in a
# container of its own), one task worker beside it. Either process ending stops the other and the
# script exits 1, so the container ends and its restart policy brings both back; TERM or INT stops
# both and exits 0.
set -e

# gunicorn's workers and the task worker keep their metrics in one directory, emptied at each start:
# /metrics adds up its files. Without PROMETHEUS_MULTIPROC_DIR a fresh one is made, and removed at the end.
if [ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  PROMETHEUS_MULTIPROC_DIR=$(mktemp -d "${TMPDIR:-/tmp}/autopack-metrics.XXXXXX")
  made_metrics_dir=1
fi
export PROMETHEUS_MULTIPROC_DIR
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db

# A database started beside the app (docker compose) may still be starting.
python manage.py wait_for_database --timeout 60
python manage.py migrate --no-input

pids=""
stopping=""
# Set before the processes start, so none is left behind by a TERM that comes while they start.
trap 'stopping=1; kill -TERM $pids 2>/dev/null || true' INT TERM
if [ "${AUTOPACK_TASK_WORKER:-1}" != 0 ]; then
  python manage.py start_alert_sweep
  python manage.py db_worker --no-reload &
  pids=$!
fi
gunicorn autopack_site.wsgi --config autopack_site/gunicorn_conf.py \
  --bind "${HOST:-0.0.0.0}:${PORT:-8000}" --workers "${WORKERS:-2}" &
pids="$pids $!"

# A trap runs once the command in hand returns: a short sleep keeps the answer to TERM prompt.
while [ -z "$stopping" ]; do
  for pid in $pids; do
    kill -0 "$pid" 2>/dev/null || break 2
  done
  sleep 1
done
kill -TERM $pids 2>/dev/null || true
# A signal interrupts `wait`; wait again until both have ended.
until wait; do :; done
if [ -n "${made_metrics_dir:-}" ]; then
  rm -rf "$PROMETHEUS_MULTIPROC_DIR"
fi
if [ -z "$stopping" ]; then
  echo "start.sh: a process ended by itself; the other was stopped" >&2
  exit 1
fi
