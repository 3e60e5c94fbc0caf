#!/usr/bin/env bash
# Runs one benchmark script against a throw-away PostgreSQL and Redis on
# loopback (scripts/services.sh), migrated first.
# Usage: bench/run.sh bench/bench_slots.py [script arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_venv requirements-test.txt
trap stop_services EXIT INT TERM
start_services
# Benchmarks and the fault harness run interval schedules every second.
export MIN_INTERVAL_SECONDS=${MIN_INTERVAL_SECONDS:-1}
.venv/bin/python manage.py migrate -v 0
script=$1
shift
.venv/bin/python "$script" "$@"
