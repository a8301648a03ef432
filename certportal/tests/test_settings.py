"""Settings fail loudly on bad values, and production mode is locked down."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEK = base64.b64encode(os.urandom(32)).decode()


def run_manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # A clean deployment environment: nothing of ours, and not the browser tests'
    # DJANGO_ALLOW_ASYNC_UNSAFE (which check --deploy rightly refuses).
    skip = ("CERTPORTAL_", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "REDIS_URL")
    base = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    base.update(
        {"CERTPORTAL_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "certportal.settings"}
    )
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CERTPORTAL_DEBUG": "maybe"}, "CERTPORTAL_DEBUG='maybe' is not a boolean"),
        ({"CERTPORTAL_SECRET_KEY": "x"}, "CERTPORTAL_KEK (or CERTPORTAL_KEK_FILE) is required"),
        ({"CERTPORTAL_SECRET_KEY": "x", "CERTPORTAL_KEK": "short"}, "CERTPORTAL_KEK"),
        (
            {"CERTPORTAL_DEBUG": "1", "CERTPORTAL_BASE_URL": "ftp://x"},
            "CERTPORTAL_BASE_URL='ftp://x'",
        ),
        (
            {"CERTPORTAL_DEBUG": "1", "CERTPORTAL_CRL_VALIDITY_HOURS": "ten"},
            "CERTPORTAL_CRL_VALIDITY_HOURS='ten' is not an integer",
        ),
        (
            {"CERTPORTAL_DEBUG": "1", "CERTPORTAL_DB_ONE_STATEMENT_WRITES": "sometimes"},
            "CERTPORTAL_DB_ONE_STATEMENT_WRITES='sometimes' is not a boolean",
        ),
        (
            {"CERTPORTAL_KEK": KEK},
            "CERTPORTAL_SECRET_KEY (or CERTPORTAL_SECRET_KEY_FILE) is required",
        ),
    ],
)
def test_bad_configuration_stops_the_portal(tmp_path, env, message):
    result = run_manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_kek_file_variant_is_read(tmp_path):
    kek_file = tmp_path / "kek"
    kek_file.write_text(KEK + "\n")
    result = run_manage(
        tmp_path, "check", CERTPORTAL_KEK_FILE=str(kek_file), CERTPORTAL_SECRET_KEY="s" * 60
    )
    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    result = run_manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        CERTPORTAL_KEK=KEK,
        CERTPORTAL_SECRET_KEY=base64.b64encode(os.urandom(48)).decode(),
        CERTPORTAL_BASE_URL="https://pki.example.test",
        ALLOWED_HOSTS="pki.example.test",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
