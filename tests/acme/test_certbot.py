"""certbot (PyPI) with EAB and http-01 (standalone on port 5002): certonly, renew driven
by ARI, revoke."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from issuance.choices import CertificateStatus
from issuance.models import Certificate
from pki.certs import serial_hex

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True)]

CERTBOT = str(Path(sys.executable).with_name("certbot"))
NAME = "app.example.test"


def certbot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    dirs = [
        "--config-dir",
        str(tmp_path / "c"),
        "--work-dir",
        str(tmp_path / "w"),
        "--logs-dir",
        str(tmp_path / "l"),
    ]
    result = subprocess.run([CERTBOT, *args, *dirs], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def live_cert(tmp_path: Path) -> x509.Certificate:
    pem = (tmp_path / "c" / "live" / NAME / "cert.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem)


@pytest.mark.skipif(not Path(CERTBOT).exists(), reason="certbot comes with the dev extra")
def test_certbot_certonly_ari_renew_revoke(
    tmp_path, directory_url, eab, acme_settings, tls_profile
):
    certbot(
        tmp_path,
        "certonly",
        "-n",
        "--agree-tos",
        "-m",
        "ops@example.test",
        "--server",
        directory_url,
        "--standalone",
        "--http-01-port",
        "5002",
        "--http-01-address",
        "127.0.0.1",
        "-d",
        NAME,
        f"--eab-kid={eab[0]}",
        f"--eab-hmac-key={eab[1]}",
    )
    first = live_cert(tmp_path)
    assert Certificate.objects.get(serial_number=serial_hex(first.serial_number)).method == "acme"

    # ARI says "not yet": a fresh 90-day certificate is not renewed.
    not_due = certbot(tmp_path, "renew", "-n")
    assert "not yet due" in not_due.stdout + not_due.stderr
    assert live_cert(tmp_path).serial_number == first.serial_number
    conf_path = tmp_path / "c" / "renewal" / f"{NAME}.conf"
    assert "ari_retry_after" in conf_path.read_text()  # certbot asked ARI and kept Retry-After

    # The profile now wants renewal long before expiry: ARI's window opens in the past,
    # and certbot renews although its own default (2/3 of the lifetime) is far away.
    tls_profile.renewal_window_days = 365
    tls_profile.save()
    conf_path.write_text(  # forget the stored ARI retry time so certbot asks again now
        "\n".join(x for x in conf_path.read_text().splitlines() if "ari_retry_after" not in x)
    )
    certbot(tmp_path, "renew", "-n", "--no-random-sleep-on-renew")
    second = live_cert(tmp_path)
    assert second.serial_number != first.serial_number

    certbot(
        tmp_path,
        "revoke",
        "-n",
        "--server",
        directory_url,
        "--cert-name",
        NAME,
        "--reason",
        "keycompromise",
        "--no-delete-after-revoke",
    )
    stored = Certificate.objects.get(serial_number=serial_hex(second.serial_number))
    assert (stored.status, stored.revocation_reason) == (CertificateStatus.REVOKED, "keyCompromise")
