#!/usr/bin/env bash
# Set up and run the whole test suite: lint, then pytest on SQLite, then on PostgreSQL.
# Extra arguments go to pytest (e.g. `make test` or `bash scripts/test.sh -k crl`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh

PY=.venv/bin/python
export CERTPORTAL_KEK="${CERTPORTAL_KEK:-$($PY -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())')}"
export CERTPORTAL_SECRET_KEY="${CERTPORTAL_SECRET_KEY:-test-$($PY -c 'import secrets;print(secrets.token_hex(16))')}"
export CERTPORTAL_DATA_DIR="${CERTPORTAL_DATA_DIR:-$(mktemp -d)}"

echo "== lint"
.venv/bin/ruff check .
.venv/bin/mypy . --no-error-summary

echo "== pytest on SQLite"
DATABASE_URL="sqlite:///$CERTPORTAL_DATA_DIR/test.sqlite3" $PY -m pytest -q "$@"

echo "== pytest on PostgreSQL"
DATABASE_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/certportal}" \
  $PY -m pytest -q -p no:cacheprovider "$@"
