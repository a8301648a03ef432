"""Automatic renewal: the due-scan, renewal through the pipeline, failures and backoff."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from certportal.models import OutboxEvent
from issuance import renewal, revocation
from issuance.choices import CertificateStatus, EnrollmentMethod
from issuance.models import Certificate, RenewalSettings
from issuance.renewal import sweep
from issuance.services import KeySpec, submit
from pki import keys

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(application, tls_profile, actor):
    """Server-generated keys (the portal holds them), 90 days, profile window 30 days."""

    def make(cn: str = "a.example.test"):
        spec = KeySpec(algorithm="EC_P256", common_name=cn, sans=[cn])
        return submit(
            application=application, profile=tls_profile, method="ui", actor=actor, key_spec=spec
        ).certificate

    return make


def sweep_at(when):
    with time_machine.travel(when, tick=False):
        renewal.plan()
        return renewal.renew_due()


def test_due_certificate_is_renewed_once_with_fresh_key_and_same_names(held):
    old = held()
    assert sweep_at(old.not_after - timedelta(days=31)).renewed == 0
    assert sweep_at(old.not_after - timedelta(days=29)).renewed == 1
    assert sweep_at(old.not_after - timedelta(days=28)).renewed == 0
    old.refresh_from_db()
    new = old.replaced_by
    assert old.status == CertificateStatus.SUPERSEDED
    assert new.method == EnrollmentMethod.RENEWAL
    assert new.request.replaces_id == old.pk
    assert (new.common_name, new.sans) == (old.common_name, old.sans)
    assert new.subject == old.subject
    old_key = keys.load_private_key(old.private_key_pem()).public_key()
    new_key = keys.load_private_key(new.private_key_pem()).public_key()
    assert keys.describe_public_key(old_key) == keys.describe_public_key(new_key)
    assert old.as_x509().public_key() != new.as_x509().public_key()


def test_reuse_key_mode_keeps_the_key(held, application):
    RenewalSettings.objects.create(application=application, key_mode="reuse")
    old = held()
    sweep_at(old.not_after - timedelta(days=10))
    old.refresh_from_db()
    assert old.replaced_by.as_x509().public_key() == old.as_x509().public_key()


def test_csr_certificates_are_not_renewed_server_side(application, tls_profile, actor, make_csr):
    certificate = submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("c.example.test", ["c.example.test"]),
    ).certificate
    assert sweep_at(certificate.not_after - timedelta(days=1)).total == 0
    certificate.refresh_from_db()
    assert certificate.status == CertificateStatus.ACTIVE


def test_per_certificate_settings_override_application_and_profile(held, application, actor):
    RenewalSettings.objects.create(application=application, auto_renew=False)
    off_by_app, on_by_cert = held("off.example.test"), held("on.example.test")
    renewal.configure_certificate(on_by_cert, auto_renew=True, renew_days_before=5, actor=actor)
    assert sweep_at(on_by_cert.not_after - timedelta(days=6)).renewed == 0
    assert sweep_at(on_by_cert.not_after - timedelta(days=4)).renewed == 1
    on_by_cert.refresh_from_db()
    assert on_by_cert.replaced_by.renew_days_before == 5  # the successor keeps its settings
    off_by_app.refresh_from_db()
    assert off_by_app.status == CertificateStatus.ACTIVE


def test_window_as_long_as_validity_is_refused(held, actor):
    certificate = held()
    with pytest.raises(ValidationError, match="not shorter than"):
        renewal.configure_certificate(
            certificate, auto_renew=True, renew_days_before=90, actor=actor
        )


def test_failure_is_recorded_alerted_and_retried_before_expiry(held, tls_profile):
    certificate = held()
    tls_profile.dns_rules = ["other.test"]  # the profile no longer allows the name
    tls_profile.save()
    now = certificate.not_after - timedelta(days=2)
    result = sweep_at(now)
    assert (result.renewed, result.failed) == (0, 1)
    certificate.refresh_from_db()
    assert certificate.renewal_attempts == 1
    assert "not allowed" in certificate.last_renewal_error
    assert now < certificate.next_renewal_attempt_at < certificate.not_after
    event = OutboxEvent.objects.get(event_type="certificate.renewal_failed")
    assert event.payload["attempts"] == 1
    assert sweep_at(now + timedelta(minutes=1)).total == 0  # backing off
    tls_profile.dns_rules = ["*.example.test"]
    tls_profile.save()
    assert sweep_at(certificate.next_renewal_attempt_at).renewed == 1


@pytest.mark.parametrize("attempts", [1, 3, 8, 20])
@pytest.mark.parametrize("left", [timedelta(minutes=1), timedelta(hours=5), timedelta(days=20)])
def test_backoff_is_bounded_and_shorter_than_time_left(attempts, left):
    delay = renewal.retry_delay(attempts, left)
    assert timedelta(0) < delay < left
    assert delay <= sweep.RETRY_CAP


def test_renewed_certificate_drops_out_of_expiry_alerts(held, application, actor):
    from alerts import services
    from alerts.models import AlertRule, Delivery

    channel = services.save_channel(
        application,
        name="m",
        kind="email",
        config={"recipients": ["x@example.test"]},
        secrets={},
        actor=actor,
    )
    rule = AlertRule(application=application, name="r", include_auto_renewed=True)
    services.save_rule(application, rule, [channel.pk], actor=actor)
    old = held()
    sweep_at(old.not_after - timedelta(days=29))
    with time_machine.travel(old.not_after - timedelta(days=29), tick=False):
        services.scan_expiring()
    assert not Delivery.objects.filter(certificate_id=old.pk).exists()


def test_batch_with_one_bad_certificate_renews_the_others(held, monkeypatch):
    good, bad = held("g.example.test"), held("b.example.test")
    from issuance.services import requests

    original = requests._key_spec_like

    def spec_like(certificate):
        if certificate.pk == bad.pk:
            raise RuntimeError("held key unreadable")
        return original(certificate)

    # Both the sweep's batch and its one-by-one retry (renew) look it up there.
    monkeypatch.setattr(requests, "_key_spec_like", spec_like)
    result = sweep_at(timezone.now() + timedelta(days=70))
    assert (result.renewed, result.failed) == (1, 1)
    bad.refresh_from_db()
    assert "held key unreadable" in bad.last_renewal_error
    assert Certificate.objects.get(pk=good.pk).status == CertificateStatus.SUPERSEDED


def test_application_window_not_shorter_than_validity_is_refused(application, actor):
    with pytest.raises(ValidationError, match="shortest validity"):
        renewal.configure_application(
            application, auto_renew=True, renew_days_before=90, key_mode="new", actor=actor
        )
    renewal.configure_application(
        application, auto_renew=True, renew_days_before=10, key_mode="new", actor=actor
    )
    assert RenewalSettings.objects.get(application=application).renew_days_before == 10


def test_the_sweep_does_not_load_the_ca_crl(held, issuing_ca):
    """A CRL of 100k entries is megabytes; the sweep's claim joins the CA once per row."""
    old = held()
    revocation.rebuild_crl(old.ca_id, force=True)
    with time_machine.travel(old.not_after - timedelta(days=29), tick=False):
        renewal.plan()
        with CaptureQueriesContext(connection) as queries:
            assert renewal.renew_due().renewed == 1
    assert not [q["sql"] for q in queries.captured_queries if "crl_der" in q["sql"]]
