"""Which portal CA, if any, answers for a certificate the pipeline did not issue.

A certificate's ``ca`` is the CA whose CRL and OCSP responder publish its revocation, so
it is set only where the portal knows that CA signed it: by the pipeline, or on import
when the signature verifies with the CA's public key. A name in a supplied chain proves
nothing; anything unverified is an external certificate, tracked but never published.
"""

from __future__ import annotations

from cryptography import x509

from issuance.models import Certificate
from pki import certs
from profiles.models import CertificateAuthority


class SerialTaken(Exception):
    """The CA that signed the certificate already has another certificate with its serial."""


def signing_ca(cert: x509.Certificate, info: certs.CertInfo) -> CertificateAuthority | None:
    """The portal CA whose key signed this end-entity certificate, or None.

    CA and OCSP responder certificates are never linked: revoking one through the
    inventory would put a CA's own infrastructure on its CRL.
    """
    if certs.is_ca_or_responder(info):
        return None
    candidates = (
        CertificateAuthority.objects.filter(subject=info.issuer)
        .exclude(certificate_pem="")
        .defer("crl_der")
    )
    for ca in candidates:
        if certs.verify_issued_by(cert, ca.certificate()):
            return ca
    return None


def ca_for_import(cert: x509.Certificate, info: certs.CertInfo) -> CertificateAuthority | None:
    """The CA an imported certificate is linked to, or None for an external certificate.

    A certificate the CA's record already holds under its serial (the portal issued it
    and it is imported into another Application) stays a copy: the CA answers for that
    serial through the original row only. Another certificate with the same serial is
    refused (SerialTaken): a CA never signs two, so the portal cannot tell which one the
    serial's revocation means.
    """
    ca = signing_ca(cert, info)
    if ca is None:
        return None
    holder = (
        Certificate.objects.filter(ca=ca, serial_number=info.serial)
        .values_list("fingerprint_sha256", flat=True)
        .first()
    )
    if holder is None:
        return ca
    if holder == info.fingerprint_sha256:
        return None
    raise SerialTaken(info.serial)
