#!/usr/bin/env bash
# Fault harness (bench/fault_harness.py) against a throw-away PostgreSQL and
# Redis on loopback, started here and stopped on exit.
# Usage: bench/run_fault_harness.sh [--duration 240] [--schedules 100] [--interval 2]
#        [--sleep-max 1.5] [--lock-timeout 6] [--grace 5] [--pg-down 8] ...
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_venv requirements-test.txt
trap stop_services EXIT INT TERM
start_services
.venv/bin/python manage.py migrate -v 0
.venv/bin/python bench/fault_harness.py "$@"
