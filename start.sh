#!/bin/sh
# The container's start: migrations, then gunicorn and, unless AUTOPACK_TASK_WORKER=0 (a worker runs in a
# container of its own), one task worker beside it. Either process ending stops the other, so the
# container ends and its restart policy brings both back.
set -e
python manage.py migrate --no-input
GUNICORN="gunicorn autopack_site.wsgi --config autopack_site/gunicorn_conf.py --bind 0.0.0.0:8000 --workers 2"
if [ "${AUTOPACK_TASK_WORKER:-1}" = 0 ]; then
  exec $GUNICORN
fi
python manage.py start_alert_sweep
python manage.py db_worker --no-reload &
worker=$!
$GUNICORN &
web=$!
trap 'kill -TERM "$web" "$worker" 2>/dev/null' INT TERM
while kill -0 "$web" 2>/dev/null && kill -0 "$worker" 2>/dev/null; do
  sleep 1
done
kill -TERM "$web" "$worker" 2>/dev/null || true
wait
