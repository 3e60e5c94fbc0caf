#!/usr/bin/env bash
# First try, on the embedded default (SQLite, no Redis, one scheduler):
# installs into .venv, migrates, creates an admin user with a random password,
# then runs the admin on http://127.0.0.1:${PORT:-8000}/admin/ and one
# `runscheduler`, until Ctrl-C. Set DATABASE_URL and REDIS_URL for production.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

ensure_venv requirements.txt
# The default scan runs in Debian's Chromium (SCAN_RUNNER=probe needs none).
if [ -z "${SCAN_RUNNER:-}" ] && [ -z "${SCAN_API_URL:-}" ] && [ -z "${SCAN_BROWSER_PATH:-}" ]; then
  ensure_chromium
fi
PY=.venv/bin/python
PORT=${PORT:-8000}
# First try only: a site on this machine (127.0.0.1:8080, say) may be scanned,
# over plain http. Production keeps the defaults: https, public addresses only.
export PROBE_SCHEME=${PROBE_SCHEME:-http}
export PROBE_ALLOWED_NETWORKS=${PROBE_ALLOWED_NETWORKS-127.0.0.0/8,::1/128}

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
echo "== first try: scans start at $PROBE_SCHEME:// and may reach ${PROBE_ALLOWED_NETWORKS:-public addresses only} (PROBE_SCHEME, PROBE_ALLOWED_NETWORKS)"
wait -n
