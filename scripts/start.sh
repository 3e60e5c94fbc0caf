#!/usr/bin/env bash
# First try, on the embedded default (SQLite, no Redis, one scheduler):
# installs into .venv, migrates, creates an admin user with a random password,
# then runs the admin on http://127.0.0.1:${PORT:-8000}/admin/ and one
# `runscheduler`, until Ctrl-C. Set DATABASE_URL and REDIS_URL for production.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

ensure_venv requirements.txt
PY=.venv/bin/python
PORT=${PORT:-8000}

$PY manage.py migrate --noinput -v 0
$PY manage.py ensureadmin

children=()
stop_children() {
  for pid in "${children[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_children EXIT INT TERM

$PY manage.py runscheduler &
children+=($!)
# --insecure serves the admin's static files without DEBUG (first try only;
# production serves collectstatic output from its web server).
$PY manage.py runserver --insecure --noreload "127.0.0.1:$PORT" &
children+=($!)
echo "== admin: http://127.0.0.1:$PORT/admin/   health: http://127.0.0.1:$PORT/healthz   (Ctrl-C stops both)"
wait -n
