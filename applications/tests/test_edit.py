"""Product admins change an Application's description and attached profiles."""

from __future__ import annotations

import pytest
from django.urls import reverse

from applications.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_product_admin_attaches_and_detaches_profiles(
    client, personas, application, make_profile, issuing_ca, tls_profile
):
    extra = make_profile("extra", issuing_ca)
    client.force_login(personas["product_admin"])
    url = reverse("applications:edit", args=[application.name])
    assert client.get(url).status_code == 200
    response = client.post(url, {"description": "new words", "profiles": [extra.pk]})
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.description == "new words"
    assert list(application.profiles.all()) == [extra]
    event = AuditEvent.objects.get(action="application.updated")
    assert event.data == {"attached": ["extra"], "detached": ["tls-server"]}


@pytest.mark.parametrize("persona", ["admin", "operator", "auditor", "outsider"])
def test_only_product_admins_may_edit(client, personas, application, persona):
    client.force_login(personas[persona])
    url = reverse("applications:edit", args=[application.name])
    assert client.get(url).status_code == 404
    assert client.post(url, {"description": "x"}).status_code == 404
    application.refresh_from_db()
    assert application.description == ""


def test_unknown_profile_id_is_refused_and_changes_nothing(client, personas, application):
    client.force_login(personas["product_admin"])
    url = reverse("applications:edit", args=[application.name])
    response = client.post(url, {"description": "x", "profiles": ["999999"]})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    application.refresh_from_db()
    assert application.description == "" and application.profiles.count() == 1


def test_anonymous_is_sent_to_login(client, application):
    response = client.get(reverse("applications:edit", args=[application.name]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_global_audit_log_filters_by_application(client, personas, application, actor):
    from applications.services import create_application

    create_application(name="billing", actor=actor)
    client.force_login(personas["product_admin"])
    page = client.get(reverse("applications:audit-global"), {"application": "billing"})
    body = page.content.decode()
    assert page.status_code == 200
    assert "billing" in body and "payments-api" not in body.split("<tbody")[-1]
