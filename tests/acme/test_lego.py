"""lego (Debian) with EAB and http-01: run, renew, revoke; the revocation shows in the
CRL and in OCSP."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from issuance.choices import CertificateStatus
from issuance.models import Certificate
from pki.certs import serial_hex

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True)]

LEGO = shutil.which("lego") or "/usr/bin/lego"
NAME = "app.example.test"


def lego(
    tmp_path: Path, directory_url: str, eab, *command: str
) -> subprocess.CompletedProcess[str]:
    args = [
        LEGO,
        "--server",
        directory_url,
        "--accept-tos",
        "--email",
        "ops@example.test",
        "-d",
        NAME,
        "--http",
        "--http.port",
        "127.0.0.1:5002",
        "--eab",
        "--kid",
        eab[0],
        "--hmac",
        eab[1],
        "--path",
        str(tmp_path / "lego"),
        *command,
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.skipif(not Path(LEGO).exists(), reason="lego is installed by scripts/setup.sh")
def test_lego_run_renew_revoke_shows_in_crl_and_ocsp(
    tmp_path, live_server, directory_url, eab, acme_settings, issuing_ca
):
    lego(tmp_path, directory_url, eab, "run")
    cert_file = tmp_path / "lego" / "certificates" / f"{NAME}.crt"
    first = x509.load_pem_x509_certificates(cert_file.read_bytes())[0]
    assert first.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName) == [NAME]

    lego(tmp_path, directory_url, eab, "renew", "--days", "400", "--no-random-sleep")
    second = x509.load_pem_x509_certificates(cert_file.read_bytes())[0]
    assert second.serial_number != first.serial_number
    assert Certificate.objects.filter(method="acme").count() == 2

    lego(tmp_path, directory_url, eab, "revoke")
    stored = Certificate.objects.get(serial_number=serial_hex(second.serial_number))
    assert stored.status == CertificateStatus.REVOKED

    crl_der = urllib.request.urlopen(f"{live_server.url}/pki/crl/{issuing_ca.slug}.crl").read()
    crl = x509.load_der_x509_crl(crl_der)
    assert crl.get_revoked_certificate_by_serial_number(second.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(first.serial_number) is None

    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(second, issuing_ca.certificate(), hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    http_request = urllib.request.Request(
        f"{live_server.url}/pki/ocsp/{issuing_ca.slug}",
        data=request,
        headers={"Content-Type": "application/ocsp-request"},
    )
    answer = ocsp.load_der_ocsp_response(urllib.request.urlopen(http_request).read())
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
