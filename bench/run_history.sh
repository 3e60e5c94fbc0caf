#!/usr/bin/env bash
# Benchmark of the history reads on 1,000,000 rows in a throw-away PostgreSQL.
# Usage: bench/run_history.sh [--rows N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_venv requirements-test.txt
trap stop_services EXIT INT TERM
start_services
.venv/bin/python bench/bench_history.py "$@"
