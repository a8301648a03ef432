"""ARI's suggestedWindow (RFC 9773) is the renewal window the sweep uses: the
certificate's own setting, else its Application's, else its profile's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from cryptography import x509
from django.utils import timezone

from issuance import renewal
from issuance.acme import messages
from issuance.choices import EnrollmentMethod
from issuance.models import Certificate, RenewalSettings
from issuance.services import KeySpec, revoke, submit

pytestmark = pytest.mark.django_db


def suggested_window(acme: Any, certificate: Certificate) -> dict[str, str]:
    cert = certificate.as_x509()
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier is not None
    cert_id = messages.ari_cert_id(aki.key_identifier, cert.serial_number)
    response = acme.client.get(f"{acme.directory['renewalInfo']}/{cert_id}")
    assert response.status_code == 200, response.content
    window: dict[str, str] = response.json()["suggestedWindow"]
    return window


def days_before(certificate: Certificate, start: int, end: float) -> dict[str, str | None]:
    return {
        "start": messages.timestamp(certificate.not_after - timedelta(days=start)),
        "end": messages.timestamp(certificate.not_after - timedelta(days=end)),
    }


@pytest.fixture
def acme_certificate(application: Any, tls_profile: Any, actor: Any, make_csr: Any) -> Any:
    return submit(
        application=application,
        profile=tls_profile,
        method=EnrollmentMethod.ACME,
        actor=actor,
        csr=make_csr("ari.example.test", ["ari.example.test"]),
    ).certificate


def test_without_overrides_the_window_is_the_profiles(acme, acme_certificate, tls_profile):
    days = tls_profile.renewal_window_days
    assert suggested_window(acme, acme_certificate) == days_before(acme_certificate, days, days / 2)


def test_an_application_override_moves_the_suggested_window(acme, application, acme_certificate):
    RenewalSettings.objects.create(application=application, renew_days_before=10)
    assert suggested_window(acme, acme_certificate) == days_before(acme_certificate, 10, 5)


def test_a_certificate_override_wins_over_the_application(
    acme, application, acme_certificate, actor
):
    RenewalSettings.objects.create(application=application, renew_days_before=10)
    renewal.configure_certificate(
        acme_certificate, auto_renew=None, renew_days_before=4, actor=actor
    )
    assert suggested_window(acme, acme_certificate) == days_before(acme_certificate, 4, 2)


def test_the_sweep_renews_where_ari_says_the_window_starts(acme, application, tls_profile, actor):
    RenewalSettings.objects.create(application=application, renew_days_before=12)
    spec = KeySpec(algorithm="EC_P256", common_name="held.example.test")
    held = submit(
        application=application, profile=tls_profile, method="ui", actor=actor, key_spec=spec
    ).certificate
    renewal.plan()
    held.refresh_from_db()
    window = suggested_window(acme, held)
    assert window["start"] == messages.timestamp(held.next_renewal_attempt_at)
    assert window == days_before(held, 12, 6)


def test_a_revoked_certificate_should_be_replaced_now(acme, application, acme_certificate, actor):
    RenewalSettings.objects.create(application=application, renew_days_before=10)
    revoke(acme_certificate, reason="superseded", actor=actor)
    with time_machine.travel(timezone.now(), tick=False):
        window = suggested_window(acme, acme_certificate)
        assert window["end"] == messages.timestamp(timezone.now())
    assert window["start"] < window["end"]
