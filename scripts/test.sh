#!/usr/bin/env bash
# The whole test suite against a real PostgreSQL and Redis that this script
# starts on loopback in a temporary directory and stops afterwards.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

ensure_venv requirements-test.txt
ensure_chromium
trap stop_services EXIT INT TERM
start_services

.venv/bin/python manage.py makemigrations --check --dry-run
.venv/bin/python manage.py check --fail-level WARNING
# Lint and import order (pyproject.toml): CI fails on a finding like on a test.
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
