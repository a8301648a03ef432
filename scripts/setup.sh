#!/usr/bin/env bash
# Idempotent setup on a fresh machine: Debian packages the project uses, the venv, the
# Python dependencies. Safe to run on every start; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers the tests drive: openssl, lego (ACME client), pebble (reference ACME server
# for the benchmark), scep (micromdm scepclient, and scepserver for the benchmark),
# chromium (Playwright browser tests); PostgreSQL and Redis servers
# (scripts/services.sh runs the shared ones; the outage test starts private ones with
# initdb/pg_ctl and redis-server); nginx (EST's TLS front, the host agent's reload test)
# and curl (the EST client).
APT_PACKAGES=(openssl lego pebble chromium postgresql redis-server nginx curl scep)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.deps-$(cat pyproject.toml agent/pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "== installing Python dependencies"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[dev]"
  # The host agent is its own package; its tests run the installed console script too.
  .venv/bin/pip install -q -e ./agent
  rm -f .venv/.deps-* && touch "$stamp"
fi
.venv/bin/certportal-agent --version >/dev/null
