"""The portal side of ACME: the Enrollment section, EAB credentials for Admins only,
sealed HMAC keys, audit, and bootstrap_demo's ACME entry."""

from __future__ import annotations

import json
from io import StringIO

import josepy as jose
import pytest
from django.core.management import call_command
from django.urls import reverse

from applications.models import Application, AuditEvent
from issuance.acme.models import ExternalAccountKey
from issuance.acme.tests.conftest import AcmeSession

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


def test_enrollment_section_lists_directory_per_profile(client, personas, application):
    login(client, personas["auditor"])
    page = client.get(reverse("applications:enrollment", args=[application.name])).content.decode()
    assert f"http://testserver/acme/{application.name}/tls-server/directory" in page
    assert "Create EAB credential" not in page  # auditors see URLs, not credentials


def test_admin_creates_eab_shown_once_sealed_and_audited(client, personas, application):
    login(client, personas["admin"])
    url = reverse("acme:eab-create", args=[application.name])
    response = client.post(url, {"name": "k8s cluster"})
    assert response.status_code == 200
    eab = ExternalAccountKey.objects.get(application=application)
    page = response.content.decode()
    hmac_key = page.split('id="eab-hmac">')[1].split("<")[0]
    assert eab.key_id in page
    assert jose.decode_b64jose(hmac_key) == eab.hmac_key_bytes()
    assert hmac_key not in eab.hmac_key and eab.hmac_key.startswith("v2:")
    assert response["Cache-Control"] == "no-store"
    event = AuditEvent.objects.get(action="acme.eab_created")
    assert hmac_key not in json.dumps(event.data)
    section = client.get(reverse("applications:enrollment", args=[application.name])).content
    assert eab.key_id.encode() in section and hmac_key.encode() not in section


def test_admin_revokes_eab_and_it_no_longer_binds(client, personas, application):
    login(client, personas["admin"])
    client.post(reverse("acme:eab-create", args=[application.name]), {"name": "ci"})
    eab = ExternalAccountKey.objects.get()
    response = client.post(reverse("acme:eab-revoke", args=[application.name, eab.pk]))
    assert response.status_code == 302
    eab.refresh_from_db()
    assert eab.revoked_at is not None
    assert AuditEvent.objects.filter(action="acme.eab_revoked").exists()


def test_eab_with_past_expiry_is_refused_by_the_form(client, personas, application):
    login(client, personas["admin"])
    url = reverse("acme:eab-create", args=[application.name])
    response = client.post(url, {"name": "old", "expires_at": "2001-01-01T00:00"})
    assert response.status_code == 200
    assert not ExternalAccountKey.objects.exists()


@pytest.mark.parametrize(
    ("persona", "status"), [("operator", 403), ("auditor", 403), ("outsider", 404)]
)
def test_non_admins_cannot_manage_eab(client, personas, application, persona, status):
    login(client, personas[persona])
    url = reverse("acme:eab-create", args=[application.name])
    assert client.post(url, {"name": "x"}).status_code == status
    assert not ExternalAccountKey.objects.exists()


def test_anonymous_cannot_manage_eab(client, application):
    response = client.post(reverse("acme:eab-create", args=[application.name]), {"name": "x"})
    assert response.status_code in (302, 404)
    assert not ExternalAccountKey.objects.exists()


def test_outsider_cannot_revoke_eab_of_another_application(client, personas, application):
    login(client, personas["admin"])
    client.post(reverse("acme:eab-create", args=[application.name]), {"name": "ci"})
    eab = ExternalAccountKey.objects.get()
    login(client, personas["outsider"])
    response = client.post(reverse("acme:eab-revoke", args=["other-app", eab.pk]))
    assert response.status_code == 404
    eab.refresh_from_db()
    assert eab.revoked_at is None


def test_bootstrap_demo_json_has_a_working_acme_credential(client):
    out = StringIO()
    call_command("bootstrap_demo", "--json", stdout=out)
    data = json.loads(out.getvalue())["acme"]
    assert data["directory"].endswith("/acme/payments-api/tls-server/directory")
    session = AcmeSession(client, "payments-api")
    assert session.register((data["eab_kid"], data["eab_hmac"])).status_code == 201
    call_command("bootstrap_demo", "--json", stdout=StringIO())
    app = Application.objects.get(name="payments-api")
    assert app.acme_eab_keys.filter(revoked_at__isnull=True).count() == 1
