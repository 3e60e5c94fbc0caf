#!/usr/bin/env bash
# Runs bench/bench_sync.py against a throw-away PostgreSQL and Redis (scripts/services.sh).
# Usage: bench/run_bench_sync.sh [--entries 10000] [--runs 7]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_venv requirements-test.txt
trap stop_services EXIT INT TERM
start_services
.venv/bin/python manage.py migrate -v 0
.venv/bin/python bench/bench_sync.py "$@"
