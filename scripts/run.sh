#!/usr/bin/env bash
# Set up and run the portal on the embedded default: SQLite in ./data, django-q2 on the
# ORM broker, demo data. http://127.0.0.1:8000 ; Ctrl-C stops every process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export CERTPORTAL_DEBUG="${CERTPORTAL_DEBUG:-1}"
PY=.venv/bin/python
$PY manage.py migrate --noinput -v 0
$PY manage.py install_schedules
$PY manage.py bootstrap_demo
$PY manage.py qcluster &
QPID=$!
# ACME challenge validation has its own queue and workers (CERTPORTAL_ACME_VALIDATION_*).
Q_CLUSTER_NAME="${CERTPORTAL_Q_NAME:-certportal}-acme" $PY manage.py qcluster &
APID=$!
trap 'kill $QPID $APID 2>/dev/null || true' EXIT INT TERM
$PY manage.py runserver "${CERTPORTAL_LISTEN:-127.0.0.1:8000}"
