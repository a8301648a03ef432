"""Pre-signed OCSP answers: one per (CA, serial), served as they are until nextUpdate."""

from __future__ import annotations

from django.db import models


class OCSPResponse(models.Model):
    """The signed, nonce-free answer about one certificate, for a SHA-1 CertID (RFC 5019).

    Written when the certificate is issued, rewritten in the transaction that changes its
    revocation status, refreshed before ``next_update`` by ``issuance.ocsp.tasks``. The
    CertID's issuer hashes are kept beside it, so a request is matched in the lookup itself.
    """

    ca = models.ForeignKey(
        "profiles.CertificateAuthority", on_delete=models.CASCADE, related_name="+"
    )
    serial_number = models.CharField(max_length=64)
    # SHA-1 of the issuer's name, then SHA-1 of its key: the CertID's issuer part.
    issuer_hash = models.BinaryField(max_length=40)
    response_der = models.BinaryField()
    # Who signed it (CERTPORTAL_OCSP_RESPONDER): after that setting changes, answers
    # signed the other way are signed again when asked for.
    responder = models.CharField(max_length=16)
    this_update = models.DateTimeField()
    next_update = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["ca", "serial_number"], name="unique_ocsp_response_per_ca"
            )
        ]
        indexes = [models.Index(fields=["next_update"], name="ocsp_response_due_idx")]

    def __str__(self) -> str:
        return f"OCSP answer for {self.serial_number}"
