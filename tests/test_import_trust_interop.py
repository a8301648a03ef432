"""End to end: an Operator imports a forged certificate naming a portal CA and revokes it
through the portal's pages; the CA's CRL (fetched over HTTP, read by `openssl crl`) and
its OCSP answers (asked by `openssl ocsp`) do not change. A certificate the CA's key did
sign, imported the same way, is published when revoked."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from issuance import services
from issuance.choices import CertificateStatus, EnrollmentMethod
from issuance.models import Certificate
from tests import certfiles

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True)]


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)


class Relying:
    """What a relying party sees of the portal's CAs, through openssl over HTTP."""

    def __init__(self, base: str, tmp: Path, root: Any, inter: Any) -> None:
        self.base, self.tmp = base, tmp
        self.root_pem = self.write("root.pem", root.certificate_pem)
        self.inter_pem = self.write("inter.pem", inter.certificate_pem)

    def write(self, name: str, text: str) -> str:
        path = self.tmp / name
        path.write_text(text)
        return str(path)

    def crl(self, slug: str) -> tuple[str, str]:
        """(`openssl crl -text` of the CA's CRL, the CRL as a PEM file)."""
        url = f"{self.base}{reverse('issuance:crl', args=[slug])}"
        der = self.tmp / f"{slug}.crl"
        der.write_bytes(urllib.request.urlopen(url, timeout=10).read())
        text = openssl("crl", "-inform", "DER", "-in", str(der), "-text", "-noout")
        assert text.returncode == 0, text.stderr
        converted = self.tmp / f"{slug}.crl.pem"
        done = openssl("crl", "-inform", "DER", "-in", str(der), "-out", str(converted))
        assert done.returncode == 0, done.stderr
        return text.stdout, str(converted)

    def ocsp(self, slug: str, issuer_pem: str, cert_pem: str) -> str:
        result = openssl(
            "ocsp",
            "-issuer",
            issuer_pem,
            "-cert",
            cert_pem,
            "-url",
            f"{self.base}{reverse('issuance:ocsp', args=[slug])}",
            "-CAfile",
            self.root_pem,
            "-verify_other",
            self.inter_pem,
            "-timeout",
            "10",
        )
        assert "Response verify OK" in result.stderr + result.stdout, result.stderr
        # The status, and reason and time if revoked; not the moving this/next update.
        lines = result.stdout.replace(cert_pem, "CERT").splitlines()
        return "\n".join(line for line in lines if "Update:" not in line)

    def verify_with_crls(self, leaf_pem: str) -> subprocess.CompletedProcess[str]:
        _, root_crl = self.crl("test-root")
        _, inter_crl = self.crl("test-issuing")
        return openssl(
            "verify",
            "-crl_check_all",
            "-CAfile",
            self.root_pem,
            "-untrusted",
            self.inter_pem,
            "-CRLfile",
            root_crl,
            "-CRLfile",
            inter_crl,
            leaf_pem,
        )


@pytest.fixture
def relying(tmp_path: Path, live_server: Any, root_ca: Any, issuing_ca: Any) -> Relying:
    return Relying(live_server.url, tmp_path, root_ca, issuing_ca)


@pytest.fixture
def operator(personas: dict[str, Any]) -> Client:
    client = Client()
    client.force_login(personas["operator"])
    return client


def import_and_revoke(operator: Client, slug: str, pem: str, key_pem: str) -> tuple[Any, str]:
    """Import through the form, revoke through the form; (row, the message shown)."""
    response = operator.post(
        reverse("issuance:import", args=[slug]),
        {"certificate_pem": pem, "private_key_pem": key_pem},
        follow=True,
    )
    assert response.redirect_chain, response.content.decode()[-2000:]
    certificate = Certificate.objects.get(method=EnrollmentMethod.IMPORT)
    page = response.content.decode()
    page += operator.get(reverse("issuance:revoke", args=[slug, certificate.pk])).content.decode()
    response = operator.post(
        reverse("issuance:revoke", args=[slug, certificate.pk]),
        {"reason": "keyCompromise", "confirm": "on"},
        follow=True,
    )
    assert response.status_code == 200
    certificate.refresh_from_db()
    assert certificate.status == CertificateStatus.REVOKED
    return certificate, page + response.content.decode()


def test_forged_import_then_revoke_leaves_crl_and_ocsp_unchanged(
    relying: Relying, operator: Client, application: Any, tls_profile: Any, root_ca: Any,
    issuing_ca: Any, actor: Any,
) -> None:  # fmt: skip
    serial = int(issuing_ca.serial_number, 16)
    forged, key = certfiles.forged_under(root_ca, serial=serial, common_name="pay.example.test")
    forged_pem = relying.write("forged.pem", certfiles.pem(forged))
    leaf = services.submit(
        application=application,
        profile=tls_profile,
        method=EnrollmentMethod.API,
        actor=actor,
        key_spec=services.KeySpec(algorithm="EC_P256", common_name="app.example.test"),
    ).certificate
    assert leaf is not None
    leaf_pem = relying.write("leaf.pem", leaf.certificate_pem)
    crl_before, _ = relying.crl(root_ca.slug)
    ocsp_before = relying.ocsp(root_ca.slug, relying.root_pem, relying.inter_pem)
    forged_before = relying.ocsp(root_ca.slug, relying.root_pem, forged_pem)
    assert "CERT: unknown" in ocsp_before and "CERT: unknown" in forged_before
    assert relying.verify_with_crls(leaf_pem).returncode == 0

    row, pages = import_and_revoke(
        operator,
        application.name,
        certfiles.pem(forged) + root_ca.certificate_pem,
        certfiles.key_pem(key),
    )

    assert row.ca_id is None
    assert "imported as external" in pages and "External certificate" in pages
    assert "Marked revoked in this inventory only" in pages
    crl_after, _ = relying.crl(root_ca.slug)
    assert crl_after == crl_before
    assert "No Revoked Certificates" in crl_after
    assert relying.ocsp(root_ca.slug, relying.root_pem, relying.inter_pem) == ocsp_before
    assert relying.ocsp(root_ca.slug, relying.root_pem, forged_pem) == forged_before
    # Every certificate under the intermediate still verifies with CRL checks all the way up.
    verified = relying.verify_with_crls(leaf_pem)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_certificate_the_ca_key_signed_outside_the_pipeline_is_published_when_revoked(
    relying: Relying, operator: Client, application: Any, issuing_ca: Any
) -> None:
    cert, key = certfiles.signed_by(issuing_ca, common_name="legacy.example.test")
    cert_pem = relying.write("legacy.pem", certfiles.pem(cert))
    assert "CERT: unknown" in relying.ocsp(issuing_ca.slug, relying.inter_pem, cert_pem)

    row, pages = import_and_revoke(
        operator, application.name, certfiles.pem(cert), certfiles.key_pem(key)
    )

    assert row.ca_id == issuing_ca.pk
    assert "test-issuing signed it, so its CRL and OCSP answers cover it" in pages
    assert "External certificate" not in pages and "CRL and OCSP answers will list it" in pages
    crl_text, _ = relying.crl(issuing_ca.slug)
    assert f"Serial Number: {row.serial_number}" in crl_text
    status = relying.ocsp(issuing_ca.slug, relying.inter_pem, cert_pem)
    assert "CERT: revoked" in status and "Reason: keyCompromise" in status
    verified = relying.verify_with_crls(cert_pem)
    assert verified.returncode != 0 and "certificate revoked" in verified.stdout + verified.stderr
