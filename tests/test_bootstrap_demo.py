from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from applications.models import Application, Membership
from profiles.models import CertificateAuthority, CertificateProfile

pytestmark = pytest.mark.django_db


def run_demo() -> dict:
    out = io.StringIO()
    call_command("bootstrap_demo", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_bootstrap_demo_creates_everything_and_prints_working_credentials():
    data = run_demo()
    assert data["application"] == "payments-api"
    assert data["profiles"] == ["tls-server", "mtls-client"]
    assert set(data["members"]) == {"admin", "operator", "auditor"}
    admin = authenticate(
        username=data["product_admin"]["username"], password=data["product_admin"]["password"]
    )
    assert admin is not None and admin.is_superuser
    operator = data["members"]["operator"]
    assert authenticate(username=operator["username"], password=operator["password"]) is not None
    tls = CertificateProfile.objects.get(slug="tls-server")
    assert tls.dns_rules == ["example.test", "*.example.test", "localhost"]
    assert tls.validity_days_default == 90 and tls.validity_days_max == 397
    assert tls.issuing_ca.parent.kind == "root" and tls.issuing_ca.key_algorithm == "EC_P256"
    assert CertificateProfile.objects.get(slug="mtls-client").validity_days_default == 7


def test_bootstrap_demo_is_idempotent():
    run_demo()
    counts = (
        CertificateAuthority.objects.count(),
        CertificateProfile.objects.count(),
        Application.objects.count(),
        Membership.objects.count(),
    )
    second = run_demo()
    assert counts == (
        CertificateAuthority.objects.count(),
        CertificateProfile.objects.count(),
        Application.objects.count(),
        Membership.objects.count(),
    )
    member = second["members"]["auditor"]
    assert authenticate(username=member["username"], password=member["password"]) is not None


def test_bootstrap_demo_acme_credential_is_reusable_by_several_clients(client):
    from issuance.acme.models import Account, ExternalAccountKey
    from issuance.acme.tests.conftest import AcmeSession

    acme = run_demo()["acme"]
    assert ExternalAccountKey.objects.get(key_id=acme["eab_kid"]).reusable
    for _ in range(2):
        session = AcmeSession(client, "payments-api")
        assert session.register((acme["eab_kid"], acme["eab_hmac"])).status_code == 201
    assert Account.objects.filter(eab_key__key_id=acme["eab_kid"]).count() == 2


def test_bootstrap_demo_scep_static_challenge_enrolls(client):
    from issuance.scep.models import ScepEnrollment
    from issuance.scep.tests.support import Device, ScepClient
    from pki.scep import PKIStatus

    first = run_demo()["scep"]
    data = run_demo()["scep"]
    assert ScepEnrollment.objects.count() == 1
    assert data["url"].endswith("/scep/payments-api/mtls-client/pkiclient.exe")
    assert len(data["challenge"]) >= 16 and data["challenge"] != first["challenge"]
    scep = ScepClient(client, "/scep/payments-api/mtls-client/pkiclient.exe")
    assert scep.enroll(Device("demo-device"), first["challenge"]).status == PKIStatus.FAILURE
    assert scep.enroll(Device("demo-device"), data["challenge"]).status == PKIStatus.SUCCESS
