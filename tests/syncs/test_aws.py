"""AWS destinations through moto's server and the real boto3 client."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from django.utils import timezone

from issuance import services as issuance
from syncs import lifecycle
from syncs.backends import aws
from syncs.choices import ItemStatus
from syncs.models import SyncItem
from tests.syncs.conftest import push

pytestmark = pytest.mark.django_db

CREDS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "secret-example"}


def boto(moto: str, service: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=moto,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


class Unavailable:
    """The raw body of an injected 503 (ACM speaks JSON)."""

    def stream(self, **kwargs: Any) -> Any:
        yield b'{"__type": "ServiceUnavailable", "message": "injected fault"}'


def make_connection(api: Any, moto: str, **extra: Any) -> int:
    answer = api.post(
        "/api/v1/applications/payments-api/connections/",
        {"name": "aws", "kind": "aws", "credentials": CREDS, "endpoint_url": moto, **extra},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    return int(answer.json()["id"])


def make_sync(api: Any, connection: int, destination: str = "aws-acm", **options: Any) -> int:
    answer = api.post(
        "/api/v1/applications/payments-api/syncs/",
        {
            "name": destination,
            "destination": destination,
            "connection": connection,
            "profile": "tls-server",
            "options": {"region": "us-east-1", **options},
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    return int(answer.json()["id"])


def items(api: Any, sync: int) -> list[dict[str, Any]]:
    answer = api.get(f"/api/v1/applications/payments-api/syncs/{sync}/items/")
    assert answer.status_code == 200
    return list(answer.json()["results"])


def test_connection_answer_carries_no_credentials(admin_api, moto):
    answer = admin_api.post(
        "/api/v1/applications/payments-api/connections/",
        {"name": "aws", "kind": "aws", "credentials": CREDS, "endpoint_url": moto},
        format="json",
    )
    assert answer.status_code == 201
    assert CREDS["secret_access_key"] not in answer.content.decode()
    assert answer.json()["credentials_set"] is True
    listed = admin_api.get("/api/v1/applications/payments-api/connections/").content.decode()
    assert CREDS["secret_access_key"] not in listed and CREDS["access_key_id"] not in listed


def test_test_connection_works_against_moto(admin_api, moto):
    connection = make_connection(admin_api, moto)
    answer = admin_api.post(f"/api/v1/applications/payments-api/connections/{connection}/test/")
    assert answer.status_code == 200
    assert answer.json()["ok"] is True, answer.json()
    assert "123456789012" in answer.json()["message"]  # moto's account


def test_wrong_credentials_are_reported_by_test_connection(admin_api, moto, moto_with_auth):
    connection = make_connection(admin_api, moto_with_auth)
    answer = admin_api.post(f"/api/v1/applications/payments-api/connections/{connection}/test/")
    assert answer.json()["ok"] is False
    assert "InvalidClientTokenId" in answer.json()["message"]


def test_private_endpoint_is_refused_unless_allowed(admin_api, moto, settings):
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    answer = admin_api.post(
        "/api/v1/applications/payments-api/connections/",
        {"name": "aws", "kind": "aws", "credentials": CREDS, "endpoint_url": moto},
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "endpoint_url"
    assert "loopback" in answer.json()["errors"][0]["message"]


def test_unknown_region_is_refused(admin_api, moto):
    connection = make_connection(admin_api, moto)
    answer = admin_api.post(
        "/api/v1/applications/payments-api/syncs/",
        {
            "name": "acm",
            "destination": "aws-acm",
            "connection": connection,
            "profile": "tls-server",
            "options": {"region": "mars-north-1"},
        },
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "options.region"


def test_invalid_name_template_for_the_destination_is_refused(admin_api, moto):
    connection = make_connection(admin_api, moto)
    answer = admin_api.post(
        "/api/v1/applications/payments-api/syncs/",
        {
            "name": "sm",
            "destination": "aws-secrets-manager",
            "connection": connection,
            "profile": "tls-server",
            "name_template": "certs/{application} with spaces",
            "options": {"region": "us-east-1"},
        },
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "name_template"


def test_acm_import_renewal_keeps_arn_tags_and_removal_on_revoke(
    admin_api, moto, issue, actor, application
):
    first = issue("www.example.test")
    sync = make_sync(admin_api, make_connection(admin_api, moto), tags={"team": "payments"})
    assert push() == 1
    [item] = items(admin_api, sync)
    arn = item["external_id"]
    assert item["status"] == "synced" and arn.startswith("arn:aws:acm:us-east-1:")
    acm = boto(moto, "acm")
    tags = {t["Key"]: t["Value"] for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}
    assert tags["certportal:application"] == "payments-api"
    assert tags["certportal:certificate"] == str(first.pk)
    assert tags["team"] == "payments"

    renewed = issuance.renew(first, actor=actor).certificate
    assert push() == 1
    described = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert aws._serial(described["Serial"]) == renewed.serial_number.lower().lstrip("0")
    assert len(acm.list_certificates()["CertificateSummaryList"]) == 1
    statuses = {i["certificate"]: i["status"] for i in items(admin_api, sync)}
    assert statuses == {str(first.pk): "superseded", str(renewed.pk): "synced"}

    issuance.revoke(renewed, reason="keyCompromise", actor=actor)
    assert push() == 1
    assert acm.list_certificates()["CertificateSummaryList"] == []
    assert SyncItem.objects.get(certificate=renewed).status == ItemStatus.REMOVED


def test_an_item_is_pushed_once_per_change(admin_api, moto, issue):
    issue("www.example.test")
    sync = make_sync(admin_api, make_connection(admin_api, moto))
    calls: list[str] = []
    aws.CLIENT_HOOKS.append(
        lambda client: client.meta.events.register(
            "before-send.acm.ImportCertificate", lambda **kw: calls.append("import")
        )
    )
    aws.forget_clients()
    assert push() == 1
    run = admin_api.post(f"/api/v1/applications/payments-api/syncs/{sync}/run/")
    assert run.status_code == 202
    assert push() == 0
    assert calls == ["import"]


def test_a_503_on_the_first_attempt_is_retried_and_ends_synced(admin_api, moto, issue):
    issue("www.example.test")
    sync = make_sync(admin_api, make_connection(admin_api, moto))
    faults = [True]

    def unavailable(request: Any, **kwargs: Any) -> AWSResponse | None:
        if faults and faults.pop():
            return AWSResponse(request.url, 503, {}, Unavailable())
        return None

    aws.CLIENT_HOOKS.append(
        lambda client: client.meta.events.register("before-send.acm.ImportCertificate", unavailable)
    )
    aws.forget_clients()
    assert push() == 0
    [item] = items(admin_api, sync)
    assert item["status"] == "failed" and item["attempts"] == 1
    assert "503" in item["last_error"] or "ServiceUnavailable" in item["last_error"]
    assert lifecycle.push_due() == 0  # still backing off
    assert lifecycle.push_due(now=timezone.now() + timedelta(minutes=5)) == 1
    [item] = items(admin_api, sync)
    assert item["status"] == "synced" and item["attempts"] == 2


def test_secrets_manager_renewal_writes_a_new_version_of_the_same_secret(
    admin_api, moto, issue, actor
):
    first = issue("api.example.test")
    sync = make_sync(
        admin_api,
        make_connection(admin_api, moto),
        "aws-secrets-manager",
        fields={"private_key": "key"},
    )
    assert push() == 1
    [item] = items(admin_api, sync)
    sm = boto(moto, "secretsmanager")
    secret = sm.get_secret_value(SecretId=item["external_id"])
    assert secret["Name"] == "certportal/payments-api/api.example.test"
    value = json.loads(secret["SecretString"])
    assert value["certificate"] == first.certificate_pem.strip() + "\n"
    assert value["key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert value["certificate_chain"].startswith("-----BEGIN CERTIFICATE-----")

    renewed = issuance.renew(first, actor=actor).certificate
    assert push() == 1
    again = sm.get_secret_value(SecretId=item["external_id"])
    assert (
        json.loads(again["SecretString"])["certificate"].strip() == renewed.certificate_pem.strip()
    )
    assert again["VersionId"] != secret["VersionId"]
    versions = sm.list_secret_version_ids(SecretId=item["external_id"])["Versions"]
    current = [v for v in versions if "AWSCURRENT" in v["VersionStages"]]
    assert len(versions) == 2 and current[0]["VersionId"] == again["VersionId"]


def test_a_certificate_without_a_held_key_is_reported_not_syncable(
    admin_api, moto, application, tls_profile, actor, make_csr
):
    issuance.submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("csr.example.test", ["csr.example.test"]),
    )
    sync = make_sync(admin_api, make_connection(admin_api, moto))
    push()
    [item] = items(admin_api, sync)
    assert item["status"] == "not_syncable"
    assert "private key" in item["last_error"]


def test_deleting_a_sync_removes_what_it_pushed_before_forgetting_it(admin_api, moto, issue):
    issue("gone.example.test")
    sync = make_sync(admin_api, make_connection(admin_api, moto))
    assert push() == 1
    acm = boto(moto, "acm")
    assert len(acm.list_certificates()["CertificateSummaryList"]) == 1
    answer = admin_api.delete(f"/api/v1/applications/payments-api/syncs/{sync}/?remove_remote=true")
    assert answer.status_code == 202
    assert admin_api.get(f"/api/v1/applications/payments-api/syncs/{sync}/").json()["deleting"]
    assert push() == 1
    assert acm.list_certificates()["CertificateSummaryList"] == []
    assert admin_api.get(f"/api/v1/applications/payments-api/syncs/{sync}/").status_code == 404


def test_never_touches_a_certificate_it_does_not_own(admin_api, moto, issue, actor):
    first = issue("owned.example.test")
    sync = make_sync(admin_api, make_connection(admin_api, moto))
    assert push() == 1
    [item] = items(admin_api, sync)
    acm = boto(moto, "acm")
    acm.remove_tags_from_certificate(
        CertificateArn=item["external_id"],
        Tags=[{"Key": "certportal:application", "Value": "payments-api"}],
    )
    issuance.renew(first, actor=actor)
    assert push() == 0
    renewed = next(i for i in items(admin_api, sync) if i["certificate"] != str(first.pk))
    assert renewed["status"] == "failed" and "not touching it" in renewed["last_error"]


def test_drift_check_reports_a_missing_certificate_and_repairs_it(admin_api, moto, issue, actor):
    from syncs import services
    from syncs.models import Sync

    issue("drift.example.test")
    sync_id = make_sync(admin_api, make_connection(admin_api, moto))
    assert push() == 1
    [item] = items(admin_api, sync_id)
    acm = boto(moto, "acm")
    sync = Sync.objects.get(pk=sync_id)
    clean = services.check_drift(sync, repair=False, actor=actor)
    assert clean.report["missing"] == [] and clean.report["changed"] == []
    acm.delete_certificate(CertificateArn=item["external_id"])
    run = services.check_drift(sync, repair=True, actor=actor)
    assert run.report["missing"] == [
        {"certificate": item["certificate"], "external_id": item["external_id"]}
    ]
    assert run.report["repaired"] == 1
    assert lifecycle.push_due() == 1
    assert len(acm.list_certificates()["CertificateSummaryList"]) == 1
    runs = admin_api.get(f"/api/v1/applications/payments-api/syncs/{sync_id}/runs/").json()
    assert [r["trigger"] for r in runs["results"]][:2] == ["drift", "drift"]


def test_a_role_to_assume_is_used_for_every_call(admin_api, moto, issue):
    issue("role.example.test")
    role = "arn:aws:iam::123456789012:role/certportal-sync"
    connection = make_connection(admin_api, moto, role_arn=role)
    answer = admin_api.post(f"/api/v1/applications/payments-api/connections/{connection}/test/")
    assert answer.json()["ok"] is True
    assert "assumed-role/certportal-sync" in answer.json()["message"]
    make_sync(admin_api, connection)
    assert push() == 1


def test_patch_changes_only_what_it_names_and_requeues(admin_api, moto, issue):
    issue("patch.example.test")
    sync = make_sync(admin_api, make_connection(admin_api, moto))
    assert push() == 1
    answer = admin_api.patch(
        f"/api/v1/applications/payments-api/syncs/{sync}/",
        {"options": {"region": "us-east-1", "include_root": True}},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["name"] == "aws-acm" and answer.json()["options"]["include_root"]
    assert push() == 1  # the changed options are pushed once, into the same ARN
    assert len(boto(moto, "acm").list_certificates()["CertificateSummaryList"]) == 1


def test_an_inactive_sync_pushes_nothing(admin_api, moto, issue):
    issue("off.example.test")
    sync = make_sync(admin_api, make_connection(admin_api, moto))
    admin_api.patch(
        f"/api/v1/applications/payments-api/syncs/{sync}/", {"is_active": False}, format="json"
    )
    assert push() == 0
    assert items(admin_api, sync)[0]["status"] == "pending"


def test_a_push_whose_answer_was_lost_is_found_by_its_tags_not_imported_twice(
    admin_api, moto, issue
):
    from syncs import selection
    from syncs.services import spec_of

    issue("lost.example.test")
    sync_id = make_sync(admin_api, make_connection(admin_api, moto))
    item = SyncItem.objects.select_related("sync", "certificate").get(sync_id=sync_id)
    data = selection.payload(item.sync, item.certificate, "payments-api")
    lost = aws.ACM.upsert(
        spec_of(item.sync.connection), item.sync.options, data, None, look_up=False
    )
    SyncItem.objects.filter(pk=item.pk).update(attempts=1)  # that attempt's worker died
    assert push() == 1
    item.refresh_from_db()
    assert item.external_id == lost.external_id
    assert len(boto(moto, "acm").list_certificates()["CertificateSummaryList"]) == 1


def test_an_unreachable_endpoint_is_reported_and_retried(admin_api, moto, issue):
    dead = "http://127.0.0.1:18609"  # nothing listens there
    connection = make_connection(admin_api, dead)
    answer = admin_api.post(f"/api/v1/applications/payments-api/connections/{connection}/test/")
    assert answer.json()["ok"] is False and "unreachable" in answer.json()["message"]
    issue("dead.example.test")
    sync = make_sync(admin_api, connection)
    assert push() == 0
    [item] = items(admin_api, sync)
    assert item["status"] == "failed" and "unreachable" in item["last_error"]
    assert SyncItem.objects.get().next_attempt_at is not None  # transient: tried again
