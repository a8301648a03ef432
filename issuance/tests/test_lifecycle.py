"""Renewal, decisions on pending requests, import and key export."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from applications.models import AuditEvent
from issuance import services
from issuance.choices import CertificateStatus, RequestState
from issuance.models import Certificate, CertificateRequest
from issuance.services import (
    CertificateFileError,
    KeySpec,
    RenewalError,
    export_pkcs12,
    import_certificate,
    renew,
    submit,
)
from pki import export, keys

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(application, tls_profile, actor):
    spec = KeySpec(algorithm="EC_P256", common_name="a.example.test", sans=["b.example.test"])
    return submit(
        application=application, profile=tls_profile, method="ui", actor=actor, key_spec=spec
    ).certificate


@pytest.mark.parametrize("mode", ["new", "reuse"])
def test_renew_with_held_key_supersedes_and_keeps_names(held, actor, mode):
    result = renew(held, actor=actor, key_mode=mode)
    new = result.certificate
    held.refresh_from_db()
    assert held.status == CertificateStatus.SUPERSEDED
    assert new.replaces_id == held.pk and new.sans == held.sans
    assert new.common_name == "a.example.test"
    same_key = keys.keys_match(keys.load_private_key(held.private_key_pem()), new.as_x509())
    assert same_key is (mode == "reuse")


def test_renew_with_csr(held, actor, make_csr):
    new = renew(held, actor=actor, key_mode="csr", csr=make_csr("a.example.test")).certificate
    assert not new.has_private_key and new.replaces_id == held.pk


def test_renew_refuses_revoked_and_unknown_mode(held, actor):
    with pytest.raises(RenewalError, match="Unknown key mode 'old'"):
        renew(held, actor=actor, key_mode="old")
    services.revoke(held, reason="unspecified", actor=actor)
    with pytest.raises(RenewalError, match="revoked"):
        renew(held, actor=actor)


def test_reuse_needs_a_held_key(application, tls_profile, actor, make_csr):
    cert = submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("a.example.test"),
    ).certificate
    with pytest.raises(RenewalError, match="does not hold"):
        renew(cert, actor=actor, key_mode="reuse")


@pytest.fixture
def needs_approval(monkeypatch, hold_every_request):
    hold_every_request()


def test_pending_request_is_issued_after_approval(
    needs_approval, application, tls_profile, actor, make_csr, monkeypatch
):
    result = submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("a.example.test"),
    )
    assert result.pending and result.certificate is None
    assert Certificate.objects.count() == 0
    issued = services.issue_approved(result.request, actor=actor)
    assert issued.request.state == RequestState.ISSUED
    assert issued.certificate.request_id == result.request.pk


def test_approved_request_fails_if_policy_changed(
    needs_approval, application, tls_profile, actor, make_csr
):
    result = submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("a.example.test"),
    )
    tls_profile.dns_rules = ["other.test"]
    tls_profile.save()
    outcome = services.issue_approved(result.request, actor=actor)
    assert outcome.request.state == RequestState.FAILED
    assert 'Subject CN "a.example.test" is a DNS name not allowed' in outcome.request.reason
    assert Certificate.objects.count() == 0


def test_rejected_and_expired_requests_end(
    needs_approval, application, tls_profile, actor, make_csr
):
    first = submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("a.example.test"),
    ).request
    services.reject_request(first, actor=actor, reason="not ours")
    assert first.state == RequestState.REJECTED
    with pytest.raises(services.IssuanceRejected, match="cannot become"):
        services.issue_approved(first, actor=actor)
    second = submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("a.example.test"),
    ).request
    assert second.expires_at is not None
    assert services.expire_pending_requests(now=second.expires_at + timedelta(seconds=1)) == 1
    second.refresh_from_db()
    assert second.state == RequestState.EXPIRED
    assert AuditEvent.objects.filter(action="request.expired").count() == 1


def test_import_refuses_duplicates_and_wrong_pkcs12_password(held, application, actor):
    key_pem = held.private_key_pem()
    pem = held.certificate_pem + export.pem_chain(held.chain())
    p12 = export_pkcs12(held, password="correct horse", actor=actor)
    with pytest.raises(CertificateFileError, match="already in this Application"):
        import_certificate(application, actor=actor, certificate_pem=pem, private_key_pem=key_pem)
    with pytest.raises(CertificateFileError):
        import_certificate(application, actor=actor, pkcs12=p12, password=b"wrong password")
    assert AuditEvent.objects.filter(action="certificate.key_downloaded").count() == 1


def test_import_external_certificate(application, actor, make_ca):
    from pki import certs, names, policy

    outside = make_ca("outside-root")
    key = keys.generate_private_key("EC_P256")
    now = timezone.now()
    decision = policy.Decision(
        subject=names.build_name("ext.example.test"),
        common_name="ext.example.test",
        dns_names=("ext.example.test",),
        ip_addresses=(),
        emails=(),
        uris=(),
        not_before=now,
        not_after=now + timedelta(days=30),
        key_usages=("digitalSignature",),
        extended_key_usages=("serverAuth",),
    )
    cert = certs.build_leaf(outside.issuer(), key.public_key(), decision)
    p12 = export.to_pkcs12(cert, key, [outside.certificate()], b"secret-pass")
    imported = import_certificate(application, actor=actor, pkcs12=p12, password=b"secret-pass")
    assert imported.issuer == outside.subject
    assert imported.has_private_key and imported.method == "import"
    assert imported.chain()[0] == outside.certificate()


def test_import_refuses_mismatched_key_and_garbage(held, application, actor):
    other = keys.private_key_to_pem(keys.generate_private_key("EC_P256"))
    before = Certificate.objects.count()
    with pytest.raises(CertificateFileError, match="does not match"):
        import_certificate(
            application, actor=actor, certificate_pem=held.certificate_pem, private_key_pem=other
        )
    with pytest.raises(CertificateFileError):
        import_certificate(application, actor=actor, certificate_pem="garbage")
    assert Certificate.objects.count() == before
    assert CertificateRequest.objects.count() == 1


def test_export_pkcs12_opens_with_password(held, actor):
    data = export_pkcs12(held, password="long enough", actor=actor)
    key, cert, chain = export.load_pkcs12(data, b"long enough")
    assert keys.keys_match(key, cert) and len(chain) == 2
    with pytest.raises(CertificateFileError, match="at least 8"):
        export_pkcs12(held, password="short", actor=actor)


def test_expired_certificates_are_marked_once(held, actor):
    from issuance.services import expire_certificates

    assert expire_certificates(now=held.not_after - timedelta(seconds=1)) == 0
    assert expire_certificates(now=held.not_after + timedelta(seconds=1)) == 1
    held.refresh_from_db()
    assert held.status == CertificateStatus.EXPIRED
    assert expire_certificates(now=held.not_after + timedelta(days=1)) == 0
