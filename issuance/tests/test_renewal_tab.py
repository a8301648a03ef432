"""The Renewal tab: who sees it, the Application's defaults, a certificate's overrides."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from applications.models import Application, AuditEvent
from applications.tabs import tabs_for
from certportal.event_types import EventType
from issuance import renewal
from issuance.choices import HELD_KEY_MODES, KeyMode
from issuance.models import RenewalSettings
from issuance.services import KeySpec, submit

pytestmark = pytest.mark.django_db


def url(name, application, *args):
    return reverse(f"issuance:{name}", args=[application.name, *args])


def held(application, tls_profile, actor, cn="a.example.test"):
    spec = KeySpec(algorithm="EC_P256", common_name=cn, sans=[cn])
    return submit(
        application=application, profile=tls_profile, method="ui", actor=actor, key_spec=spec
    ).certificate


def test_tab_only_for_admins(personas, application):
    assert "renewal" in {t.key for t in tabs_for(personas["admin"], application)}
    assert "renewal" not in {t.key for t in tabs_for(personas["operator"], application)}
    assert "renewal" not in {t.key for t in tabs_for(personas["auditor"], application)}


@pytest.mark.parametrize(
    ("who", "status"), [("operator", 403), ("auditor", 403), ("outsider", 404)]
)
def test_others_cannot_open_renewal(client, personas, application, tls_profile, actor, who, status):
    certificate = held(application, tls_profile, actor)
    client.force_login(personas[who])
    assert client.get(url("renewal", application)).status_code == status
    assert client.get(url("certificate-renewal", application, certificate.pk)).status_code == status


def test_admin_saves_the_application_defaults(client, personas, application):
    client.force_login(personas["admin"])
    response = client.post(
        url("renewal", application),
        {"auto_renew": "on", "renew_days_before": 10, "key_mode": KeyMode.REUSE},
    )
    assert response.status_code == 302
    row = RenewalSettings.objects.get(application=application)
    assert (row.auto_renew, row.renew_days_before, row.key_mode) == (True, 10, "reuse")
    assert AuditEvent.objects.filter(action=EventType.APPLICATION_RENEWAL_CONFIGURED).exists()


def test_the_settings_form_offers_only_the_modes_the_sweep_can_use(client, personas, application):
    client.force_login(personas["admin"])
    page = client.get(url("renewal", application)).content.decode()
    for mode in HELD_KEY_MODES:
        assert f'value="{mode.value}"' in page
    assert f'value="{KeyMode.CSR.value}"' not in page
    response = client.post(
        url("renewal", application), {"auto_renew": "on", "key_mode": KeyMode.CSR}
    )
    assert response.status_code == 400
    assert not RenewalSettings.objects.exists()


def test_renewal_window_beyond_validity_is_refused_in_the_form(client, personas, application):
    client.force_login(personas["admin"])
    response = client.post(
        url("renewal", application),
        {"auto_renew": "on", "renew_days_before": 120, "key_mode": "new"},
    )
    assert response.status_code == 400
    assert "shortest validity" in response.content.decode()


def test_admin_overrides_one_certificate(client, personas, application, tls_profile, actor):
    certificate = held(application, tls_profile, actor)
    client.force_login(personas["admin"])
    response = client.post(
        url("certificate-renewal", application, certificate.pk),
        {"auto_renew": "off", "renew_days_before": 7},
    )
    assert response.status_code == 302
    certificate.refresh_from_db()
    assert (certificate.auto_renew, certificate.renew_days_before) == (False, 7)
    # Auto-renew off: the sweep's due time is notAfter, i.e. never before expiry.
    assert certificate.next_renewal_attempt_at == certificate.not_after


def test_a_certificate_of_another_application_is_not_found(
    client, personas, application, tls_profile, actor
):
    other = Application.objects.get(name="other-app")
    foreign = held(other, tls_profile, actor)
    client.force_login(personas["admin"])
    response = client.get(url("certificate-renewal", application, foreign.pk))
    assert response.status_code == 404


def test_the_renewal_page_reads_a_fixed_number_of_queries(
    client, personas, application, tls_profile, actor
):
    client.force_login(personas["admin"])
    held(application, tls_profile, actor, "one.example.test")
    renewal.plan()
    client.get(url("renewal", application))  # warm the per-process caches
    with CaptureQueriesContext(connection) as one:
        client.get(url("renewal", application))
    for index in range(5):
        held(application, tls_profile, actor, f"n{index}.example.test")
    renewal.plan()
    with CaptureQueriesContext(connection) as six:
        page = client.get(url("renewal", application))
    assert len(six.captured_queries) == len(one.captured_queries)
    assert page.content.decode().count("example.test</a>") == 6
