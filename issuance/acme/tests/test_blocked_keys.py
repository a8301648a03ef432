"""ACME and compromised keys: revokeCert with reason keyCompromise blocks the key, and a
later finalize with a CSR for that key answers a badCSR problem document."""

from __future__ import annotations

import josepy as jose
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from issuance.acme.tests.test_flow import ERR, _issue, csr_der, finalize, ready_order
from issuance.choices import CertificateStatus
from issuance.models import BlockedKey, Certificate
from pki import keys

pytestmark = pytest.mark.django_db

COMPROMISED = "reported compromised"


def test_acme_revoke_with_key_compromise_blocks_and_finalize_answers_bad_csr(
    acme, eab, acme_settings, application
):
    acme.register(eab)
    cert_key = keys.generate_private_key("EC_P256")
    cert, _ = _issue(acme, key=cert_key)
    payload = {"certificate": jose.encode_b64jose(cert.public_bytes(Encoding.DER)), "reason": 1}
    revoked = acme.post(acme.directory["revokeCert"], payload)
    assert revoked.status_code == 200, revoked.content
    assert Certificate.objects.get(application=application).status == CertificateStatus.REVOKED
    assert BlockedKey.objects.filter(spki_sha256=keys.spki_sha256(cert_key)).exists()

    order = ready_order(acme, "app.example.test")
    response = finalize(acme, order, csr_der("app.example.test", key=cert_key))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    # RFC 8555 7.4: an unacceptable CSR is badCSR; badPublicKey is for the JWS's key.
    assert problem["type"] == ERR + "badCSR"
    assert COMPROMISED in problem["detail"]
    assert acme.post(order["url"], None).json()["status"] == "ready"
    good = finalize(acme, order, csr_der("app.example.test"))
    assert good.status_code == 200 and good.json()["status"] == "valid"
