"""The issuance pipeline: policy, issue, and that rejected input writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.db import connection
from django.test.utils import CaptureQueriesContext

from applications.models import AuditEvent
from certportal.models import OutboxEvent
from certportal.outbox import wanted
from issuance.choices import CertificateStatus, EnrollmentMethod, RequestState
from issuance.models import Certificate, CertificateRequest
from issuance.services import IssuanceRejected, KeySpec, attached_profile, submit
from pki import keys
from profiles.services import ensure_ocsp_signer

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, int, int, int]:
    return (
        CertificateRequest.objects.count(),
        Certificate.objects.count(),
        AuditEvent.objects.count(),
        OutboxEvent.objects.count(),
    )


def test_csr_is_issued_with_profile_extensions(application, tls_profile, make_csr, actor):
    result = submit(
        application=application,
        profile=tls_profile,
        method=EnrollmentMethod.API,
        actor=actor,
        csr=make_csr("app.example.test", ["app.example.test", "www.example.test"]),
    )
    cert = x509.load_pem_x509_certificate(result.certificate.certificate_pem.encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["app.example.test", "www.example.test"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).critical
    assert 0 < cert.serial_number < 2**159
    assert result.request.state == RequestState.ISSUED
    assert result.certificate.status == CertificateStatus.ACTIVE
    assert result.private_key_pem is None
    assert not result.certificate.has_private_key


def test_issuance_writes_audit_and_outbox_events(application, tls_profile, make_csr, actor):
    before = OutboxEvent.objects.count()
    result = submit(
        application=application,
        profile=tls_profile,
        method=EnrollmentMethod.API,
        actor=actor,
        csr=make_csr("a.example.test"),
    )
    audit = AuditEvent.objects.get(action="certificate.issued")
    assert audit.object_id == str(result.certificate.pk)
    assert audit.application == application
    outbox = OutboxEvent.objects.filter(event_type="certificate.issued").get()
    assert outbox.payload["serial_number"] == result.certificate.serial_number
    assert OutboxEvent.objects.count() == before + 1


def test_validity_is_clamped_to_profile_max(application, make_profile, issuing_ca, make_csr, actor):
    profile = make_profile(
        "short", issuing_ca, validity_days_default=10, validity_days_max=30, renewal_window_days=3
    )
    application.profiles.add(profile)
    result = submit(
        application=application,
        profile=profile,
        method="api",
        actor=actor,
        csr=make_csr("a.example.test"),
        validity_days=5000,
    )
    cert = result.certificate
    assert cert.not_after - cert.not_before <= timedelta(days=30, minutes=1)
    assert cert.not_after - cert.not_before >= timedelta(days=30)


def test_validity_is_clamped_to_ca_expiry(
    application, make_ca, root_ca, make_profile, make_csr, actor
):
    short_ca = make_ca("short-ca", parent=root_ca, validity_days=20)
    profile = make_profile("p-short-ca", short_ca)
    application.profiles.add(profile)
    result = submit(
        application=application,
        profile=profile,
        method="api",
        actor=actor,
        csr=make_csr("a.example.test"),
    )
    assert result.certificate.not_after <= short_ca.not_after


def test_server_generated_key_is_returned_once_and_sealed(application, tls_profile, actor):
    result = submit(
        application=application,
        profile=tls_profile,
        method="ui",
        actor=actor,
        key_spec=KeySpec(algorithm="EC_P384", common_name="srv.example.test"),
    )
    assert result.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    stored = Certificate.objects.get(pk=result.certificate.pk)
    assert stored.private_key.startswith("v2:")
    assert "PRIVATE KEY" not in stored.private_key
    key = keys.load_private_key(stored.private_key_pem())
    assert keys.keys_match(key, x509.load_pem_x509_certificate(stored.certificate_pem.encode()))
    assert stored.key_algorithm == "EC P-384"


def test_profile_not_attached_is_rejected(application, make_profile, issuing_ca, make_csr, actor):
    detached = make_profile("detached", issuing_ca)
    before = _counts()
    with pytest.raises(IssuanceRejected) as exc:
        submit(
            application=application,
            profile=detached,
            method="api",
            actor=actor,
            csr=make_csr("a.example.test"),
        )
    assert exc.value.code == "profile_unavailable"
    assert str(exc.value) == "Profile detached is not attached to Application payments-api."
    assert _counts() == before


def test_disabled_ca_refuses_issuance(application, tls_profile, make_csr, actor):
    from profiles.services import set_ca_status

    set_ca_status(tls_profile.issuing_ca, "disabled", actor=actor)
    with pytest.raises(IssuanceRejected) as exc:
        submit(
            application=application,
            profile=tls_profile,
            method="api",
            actor=actor,
            csr=make_csr("a.example.test"),
        )
    assert exc.value.code == "ca_unavailable"


@pytest.mark.parametrize(
    ("names", "code", "message"),
    [
        (
            ["evil.test"],
            "rejected_identifier",
            'DNS name "evil.test" is not allowed by this profile',
        ),
        (
            ["a.b.example.test"],
            "rejected_identifier",
            'DNS name "a.b.example.test" is not allowed by this profile',
        ),
    ],
)
def test_names_outside_profile_are_rejected_and_nothing_written(
    application, tls_profile, make_csr, actor, names, code, message
):
    before = _counts()
    with pytest.raises(IssuanceRejected) as exc:
        submit(
            application=application,
            profile=tls_profile,
            method="api",
            actor=actor,
            csr=make_csr(None, names),
        )
    assert exc.value.code == code
    assert exc.value.message.startswith(message)
    assert _counts() == before


def test_rsa_key_below_minimum_is_rejected(application, make_profile, issuing_ca, make_csr, actor):
    profile = make_profile("rsa3k", issuing_ca, rsa_min_bits=3072, key_algorithms=["RSA"])
    application.profiles.add(profile)
    with pytest.raises(IssuanceRejected) as exc:
        submit(
            application=application,
            profile=profile,
            method="api",
            actor=actor,
            csr=make_csr("a.example.test", algorithm="RSA_2048"),
        )
    assert exc.value.code == "bad_key"
    assert "2048" in exc.value.message and "3072" in exc.value.message


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"garbage that is not a CSR",
        b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64!\n-----END CERTIFICATE REQUEST-----\n",
        b"\x30\x82\x01\x00\x30\x81",  # truncated DER
        b"A" * (1024 * 1024),
    ],
    ids=["empty", "garbage", "bad-base64", "truncated-der", "1MB"],
)
def test_malformed_csr_is_rejected_and_nothing_written(application, tls_profile, actor, payload):
    before = _counts()
    with pytest.raises(IssuanceRejected) as exc:
        submit(application=application, profile=tls_profile, method="api", actor=actor, csr=payload)
    assert exc.value.code == "bad_csr"
    assert exc.value.field == "csr"
    assert _counts() == before


def test_csr_with_broken_signature_is_rejected(application, tls_profile, make_csr, actor):
    from cryptography.hazmat.primitives.serialization import Encoding

    der = bytearray(x509.load_pem_x509_csr(make_csr("a.example.test")).public_bytes(Encoding.DER))
    der[-5] ^= 0xFF  # inside the signature
    before = _counts()
    with pytest.raises(IssuanceRejected) as exc:
        submit(
            application=application, profile=tls_profile, method="api", actor=actor, csr=bytes(der)
        )
    assert exc.value.code == "bad_csr"
    assert _counts() == before


def test_replacement_supersedes_the_old_certificate(application, tls_profile, make_csr, actor):
    first = submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("a.example.test"),
    ).certificate
    second = submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("a.example.test"),
        replaces=first,
    ).certificate
    first.refresh_from_db()
    assert first.status == CertificateStatus.SUPERSEDED
    assert second.replaces_id == first.pk
    assert first.replaced_by == second


def test_a_resolved_profile_issues_with_one_lookup_and_one_write(
    application, tls_profile, make_csr, actor
):
    """What every front pays per certificate: the profile lookup (with its CA, the
    attachment and whether any approval policy exists), the blocked-key lookup for the
    requester's key (one for the whole batch), then the five rows (request,
    certificate, its pre-signed OCSP answer, audit and outbox events): on PostgreSQL one
    statement, atomic by itself, elsewhere five INSERTs in one transaction. (Whether the
    outbox event needs a drain comes from the consumers' per-process caches (alert
    rules, syncs), which the first event of an Application fills; the CA's delegated
    OCSP responder is made by its first issuance.)"""
    csr = make_csr("q.example.test", ["q.example.test"])
    ensure_ocsp_signer(tls_profile.issuing_ca)  # before the caches: it changes the CA
    wanted("certificate.issued", application.pk)
    with CaptureQueriesContext(connection) as captured:
        profile = attached_profile(application, tls_profile.slug)
        assert profile is not None
        submit(
            application=application,
            profile=profile,
            method=EnrollmentMethod.API,
            actor=actor,
            csr=csr,
        )
    verbs = [q["sql"].split()[0] for q in captured.captured_queries]
    assert "issuance_blockedkey" in captured.captured_queries[1]["sql"]
    if connection.vendor == "postgresql":
        assert verbs == ["SELECT", "SELECT", "WITH"]
    else:
        assert verbs == ["SELECT", "SELECT", *["INSERT"] * 5]


def test_a_policy_created_after_lookup_is_seen_by_the_next_lookup(
    application, tls_profile, make_csr, actor
):
    from approvals.models import ApprovalPolicy

    before = attached_profile(application, tls_profile.slug)
    assert before is not None and before.has_policies is False
    ApprovalPolicy.objects.create(application=application, name="all")
    profile = attached_profile(application, tls_profile.slug)
    assert profile is not None and profile.has_policies is True
    result = submit(
        application=application,
        profile=profile,
        method=EnrollmentMethod.API,
        actor=actor,
        csr=make_csr("p.example.test", ["p.example.test"]),
    )
    assert result.pending


def test_a_csr_the_front_already_parsed_is_not_parsed_again_and_still_decided(
    application, tls_profile, make_csr, actor, monkeypatch
):
    from pki import csr as pki_csr

    inside = pki_csr.parse_csr(make_csr("in.example.test", ["in.example.test"]))
    outside = pki_csr.parse_csr(make_csr("out.example.org", ["out.example.org"]))

    def parse_again(data):
        raise AssertionError("parsed twice")

    monkeypatch.setattr(pki_csr, "parse_csr", parse_again)
    issued = submit(
        application=application, profile=tls_profile, method="acme", actor=actor, csr=inside
    )
    assert issued.certificate is not None and issued.certificate.sans == ["in.example.test"]
    assert issued.request.csr_pem == inside.pem
    before = _counts()
    with pytest.raises(IssuanceRejected) as rejected:
        submit(
            application=application, profile=tls_profile, method="acme", actor=actor, csr=outside
        )
    assert "out.example.org" in rejected.value.message
    assert _counts() == before
