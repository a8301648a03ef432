"""Finalizing an ACME order through the issuance pipeline, the certificate chain
its download serves, and revokeCert."""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.db import transaction

from applications.models import Application
from certportal import generation
from certportal.event_types import EventType
from certportal.events import Actor, record
from issuance import services as issuance
from issuance.acme import jws, messages
from issuance.acme.choices import (
    OrderStatus,
)
from issuance.acme.messages import AcmeProblem
from issuance.acme.models import (
    Order,
)
from issuance.acme.services.authentication import Authenticated
from issuance.acme.services.orders import refresh_order
from issuance.choices import EnrollmentMethod
from issuance.models import Certificate
from pki import certs, export
from pki import csr as pki_csr
from pki.errors import PKIError
from profiles.models import CertificateAuthority, CertificateProfile

# --- Finalize ---------------------------------------------------------------------------


def finalize(order: Order, auth: Authenticated) -> Order:
    """finalize: the CSR must name exactly the order's identifiers; then the pipeline.

    One transaction: the pipeline's writes and the order's outcome commit together. The
    outcome is written only to an order still ready, which makes a concurrent second
    finalize wait for the first to commit and then fail, rolling back what it wrote; a
    CSR the pipeline rejects writes nothing, so the order stays ready and the client may
    send a better CSR."""
    refresh_order(order)
    if order.status != OrderStatus.READY:
        raise AcmeProblem("orderNotReady", f"The order is {order.status}, not ready.", 403)
    csr = _csr_matching(order, messages.csr_from_finalize(auth.json()))
    actor = auth.actor()
    application = order.account.application
    profile = issuance.attached_profile(application, profile_slug(order.profile_id))
    if profile is None:
        raise AcmeProblem("unauthorized", "The order's profile is no longer available.", 403)
    try:
        with transaction.atomic():
            submission = issuance.submit(
                application=application,
                profile=profile,
                method=EnrollmentMethod.ACME,
                actor=actor,
                csr=csr,
                replaces=order.replaces,
            )
            return _record_finalized(order, submission, actor)
    except issuance.IssuanceRejected as rejected:
        raise messages.problem_for(rejected, messages.FINALIZE_PROBLEMS) from rejected


def _record_finalized(order: Order, submission: issuance.Submission, actor: Actor) -> Order:
    """The order's outcome, in finalize's transaction; audited (the certificate's own
    event is what alerts and syncs consume)."""
    status = OrderStatus.PROCESSING if submission.pending else OrderStatus.VALID
    with transaction.atomic(savepoint=False):
        written = Order.objects.filter(pk=order.pk, status=OrderStatus.READY).update(
            status=status, request=submission.request, certificate=submission.certificate
        )
        if not written:  # another finalize committed first: roll this one back
            raise AcmeProblem("orderNotReady", "The order is already finalized.", 403)
        record(
            EventType.ACME_ORDER_FINALIZED,
            actor=actor,
            obj=order,
            application=order.account.application,
            data={
                "identifiers": order.identifiers,
                "status": status,
                "request_id": str(submission.request.pk),
                "certificate_id": str(submission.certificate.pk)
                if submission.certificate
                else None,
            },
            outbox=False,
        )
    order.status, order.request, order.certificate = (
        status,
        submission.request,
        submission.certificate,
    )
    return order


def _csr_matching(order: Order, csr_der: bytes) -> pki_csr.ParsedCSR:
    """The finalize CSR, parsed and verified, once it names exactly the order's identifiers."""
    try:
        parsed = pki_csr.parse_csr(csr_der)
    except PKIError as exc:
        raise AcmeProblem("badCSR", exc.message) from exc
    requested = {(i["type"], i["value"]) for i in order.identifiers}
    named = {("dns", n.lower()) for n in parsed.dns_names} | {
        ("ip", str(a)) for a in parsed.ip_addresses
    }
    if parsed.emails or parsed.uris:
        raise AcmeProblem("badCSR", "The CSR may only name DNS names and IP addresses.")
    if parsed.common_name and not _cn_in(parsed.common_name, requested):
        raise AcmeProblem(
            "badCSR", f"The CSR's common name {parsed.common_name} is not in the order."
        )
    if named != requested:
        extra = sorted(v for _, v in named - requested)
        missing = sorted(v for _, v in requested - named)
        raise AcmeProblem(
            "badCSR", f"The CSR names do not match the order (extra: {extra}, missing: {missing})."
        )
    return parsed


def _cn_in(common_name: str, requested: set[tuple[str, str]]) -> bool:
    return ("dns", common_name.lower()) in requested or ("ip", common_name) in requested


def certificate_chain_pem(certificate_pem: str, chain_pem: str, ca_id: int | None) -> str:
    """A certificate and its issuers, without the self-signed root. chain_pem is the
    certificate's own chain (imported ones); otherwise its issuing CA's is used."""
    chain = chain_pem
    if not chain and ca_id is not None:
        chain = _CA_CHAINS.get(ca_id, lambda: _ca_chain(ca_id)) or ""  # CAs are PROTECTed
    issuers = _issuers_pem(chain) if chain else ""
    return certificate_pem.strip() + "\n" + issuers


def profile_slug(profile_id: int) -> str:
    """A profile's slug (order URLs name their profile's directory), from a generation
    cache: profiles change rarely and every change moves the generation."""
    slug = _PROFILE_SLUGS.get(
        profile_id,
        lambda: (
            CertificateProfile.objects.filter(pk=profile_id).values_list("slug", flat=True).first()
        ),
    )
    return slug or ""  # PROTECTed by the orders that name it


_PROFILE_SLUGS: generation.Cache[str] = generation.Cache(
    depends_on=("profiles.CertificateProfile",)
)


def _ca_chain(ca_id: int) -> str | None:
    """The CA's certificate and the chain above it (not its keys or CRL)."""
    found = (
        CertificateAuthority.objects.filter(pk=ca_id)
        .values_list("certificate_pem", "chain_pem")
        .first()
    )
    return None if found is None else found[0].strip() + "\n" + found[1]


# Downloads need the issuing CA's chain.
_CA_CHAINS: generation.Cache[str] = generation.Cache(depends_on=("profiles.CertificateAuthority",))


@functools.lru_cache(maxsize=64)
def _issuers_pem(chain_pem: str) -> str:
    """The chain's certificates but a self-signed root, as PEM (parsed once per chain)."""
    return "".join(
        certs_pem(issuer) + "\n"
        for issuer in export.load_certificates(chain_pem)
        if issuer.issuer != issuer.subject
    )


def certs_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode().strip()


# --- Revocation -------------------------------------------------------------------------


def revoke(application: Application, auth: Authenticated) -> Certificate:
    """revokeCert by the account that ordered the certificate, or by the certificate's key."""
    cert, code = messages.certificate_from_revoke(auth.json())
    reason = messages.REVOCATION_REASONS.get(code)
    if reason is None:
        raise AcmeProblem("badRevocationReason", f"Reason code {code} is not accepted.")
    fingerprint = certs.fingerprint_sha256(cert)
    certificate = Certificate.objects.filter(
        application=application, fingerprint_sha256=fingerprint
    ).first()
    if certificate is None:
        raise AcmeProblem("malformed", "This certificate was not issued to this Application.", 404)
    if not _may_revoke(certificate, cert, auth):
        raise AcmeProblem("unauthorized", "Neither this account nor this key may revoke it.", 403)
    # A certificate on hold may still be revoked for good (revoke says when it may); a
    # refusal reaches the client through acme_endpoint's mapping (alreadyRevoked).
    return issuance.revoke(certificate, reason=reason, actor=auth.actor())


def _may_revoke(certificate: Certificate, cert: x509.Certificate, auth: Authenticated) -> bool:
    if auth.account is not None:
        return Order.objects.filter(account=auth.account, certificate=certificate).exists()
    cert_key = jws.jwk_for_public_key(cert.public_key())
    return cert_key is not None and cert_key.thumbprint() == auth.key.thumbprint()
