"""A PKIOperation from bytes in to bytes out: parse, check signature, time and
algorithms against the enrollment's settings, open the envelope, run the verb, and
answer with a CertRep signed by the RA (and encrypted to the requester with its own
cipher). Failures become FAILURE replies with their failInfo; only bytes that are no
pkiMessage at all raise ``wire.Malformed`` (the view's HTTP 400)."""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives.asymmetric import rsa

from issuance.scep import services
from issuance.scep.models import ScepEnrollment
from issuance.services import AttachedProfile
from pki import scep as wire
from pki.scep import FailInfo, MessageType, ScepFailure
from profiles.models import CertificateProfile

logger = logging.getLogger(__name__)

CAPABILITIES = ("POSTPKIOperation", "SHA-256", "SHA-512", "AES", "SCEPStandard", "GetNextCACert")
LEGACY_CAPABILITIES = ("DES3", "SHA-1")


def capabilities(enrollment: ScepEnrollment) -> list[str]:
    """GetCACaps, from the live settings."""
    caps = list(CAPABILITIES)
    if enrollment.allow_renewal:
        caps.append("Renewal")
    if enrollment.allow_legacy:
        caps.extend(LEGACY_CAPABILITIES)
    return caps


def digests(enrollment: ScepEnrollment) -> frozenset[str]:
    return wire.DIGESTS | (wire.LEGACY_DIGESTS if enrollment.allow_legacy else frozenset())


def ciphers(enrollment: ScepEnrollment) -> frozenset[str]:
    return wire.CIPHERS | (wire.LEGACY_CIPHERS if enrollment.allow_legacy else frozenset())


def ca_certificates(enrollment: ScepEnrollment, profile: CertificateProfile) -> bytes:
    """GetCACert: the RA, then the CA and the certificates above it (certs-only), built
    once per process for each RA and CA."""
    ca = profile.issuing_ca
    key = (enrollment.ra_certificate_pem, ca.certificate_pem, ca.chain_pem)
    found = _CA_CERTS.get(key)
    if found is None:
        ra = services.current_ra(enrollment).certificate
        found = wire.certs_only([ra, *ca.chain()])
        if len(_CA_CERTS) > 256:
            _CA_CERTS.clear()
        _CA_CERTS[key] = found
    return found


_CA_CERTS: dict[tuple[str, str, str], bytes] = {}


def next_ca_certificates(enrollment: ScepEnrollment, profile: CertificateProfile) -> bytes | None:
    """GetNextCACert: the successor RA and the CA chain, signed by the current RA; None
    while no rollover is pending."""
    successor = services.next_ra(enrollment)
    if successor is None:
        return None
    content = wire.certs_only([successor.certificate, *profile.issuing_ca.chain()])
    current = services.current_ra(enrollment)
    return wire.sign_data(content, {}, current.certificate, current.key, "sha256")


def pki_operation(
    enrollment: ScepEnrollment,
    found: AttachedProfile,
    body: bytes,
    *,
    source_ip: str | None,
) -> bytes:
    """The CertRep for one pkiMessage."""
    message = wire.parse_message(body)
    allowed = digests(enrollment)
    reply_digest = message.digest_algorithm if message.digest_algorithm in allowed else "sha256"
    cipher = "aes256_cbc"
    try:
        wire.verify_signature(message, digests=allowed)
        if not isinstance(message.signer.public_key(), rsa.RSAPublicKey):
            raise ScepFailure(
                FailInfo.BAD_ALG, "The requester's key must be RSA to receive a reply."
            )
        services.clock_ok(message)
        recipients = [
            (ra.certificate, ra.key)
            for ra in (services.current_ra(enrollment), services.next_ra(enrollment))
            if ra is not None
        ]
        inner, cipher = wire.open_envelope(message.content, recipients, ciphers=ciphers(enrollment))
        outcome = _run(enrollment, found, message, inner, source_ip)
    except ScepFailure as failure:
        logger.info(
            "SCEP messageType %s refused (failInfo %s): %s",
            message.message_type,
            failure.fail_info.name,
            failure.text,
        )
        return _reply(enrollment, message, reply_digest, failure=failure)
    return _reply(enrollment, message, reply_digest, outcome=outcome, cipher=cipher)


def _run(
    enrollment: ScepEnrollment,
    found: AttachedProfile,
    message: wire.PKIMessage,
    inner: bytes,
    source_ip: str | None,
) -> services.Outcome:
    kind = message.message_type
    profile = found.profile
    if kind in (MessageType.PKCS_REQ, MessageType.RENEWAL_REQ):
        return services.enroll(enrollment, found, message, inner, source_ip=source_ip)
    if kind == MessageType.CERT_POLL:
        wire.parse_issuer_and_subject(inner)
        return services.poll(enrollment, message)
    if kind == MessageType.GET_CERT:
        return services.get_cert(enrollment, profile, inner)
    if kind == MessageType.GET_CRL:
        return services.get_crl(profile, inner)
    raise ScepFailure(FailInfo.BAD_REQUEST, f"messageType {kind} is not a request.")


def _reply(
    enrollment: ScepEnrollment,
    message: wire.PKIMessage,
    digest: str,
    *,
    outcome: services.Outcome | None = None,
    failure: ScepFailure | None = None,
    cipher: str = "aes256_cbc",
) -> bytes:
    ra = services.current_ra(enrollment)

    def rep(
        status: wire.PKIStatus, *, sealed: bytes = b"", refusal: ScepFailure | None = None
    ) -> bytes:
        return wire.cert_rep(
            status=status,
            transaction_id=message.transaction_id,
            recipient_nonce=message.sender_nonce,
            signer=ra.certificate,
            key=ra.key,
            digest=digest,
            envelope_der=sealed,
            fail_info=refusal.fail_info if refusal else None,
            fail_text=refusal.text if refusal else "",
        )

    if failure is not None:
        return rep(wire.PKIStatus.FAILURE, refusal=failure)
    assert outcome is not None
    if outcome.status != wire.PKIStatus.SUCCESS:
        return rep(outcome.status)
    content = wire.certs_only(list(outcome.certificates), list(outcome.crls))
    return rep(wire.PKIStatus.SUCCESS, sealed=wire.envelope(content, message.signer, cipher))
