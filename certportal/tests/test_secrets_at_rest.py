"""Secrets at rest: a database dump holds no private key in plaintext (SQLite .dump and
pg_dump), and a sealed value opens only in the row and column it was sealed for."""

from __future__ import annotations

import base64
import io
import subprocess

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from rest_framework.test import APIClient

from certportal.api import services as credentials
from certportal.secrets import (
    LEGACY_VERSION,
    SecretError,
    keyring,
    seal,
    seal_for,
    unseal_for,
)
from issuance.models import Certificate
from issuance.services import KeySpec, submit
from pki import keys
from profiles.models import CertificateAuthority


def _key_fragments() -> list[str]:
    """Recognisable pieces of every private key the portal holds, PEM body included."""
    fragments = ["PRIVATE KEY-----"]
    holders: list[CertificateAuthority | Certificate] = [
        *CertificateAuthority.objects.all(),
        *Certificate.objects.exclude(private_key=""),
    ]
    for holder in holders:
        text = _pem_of(holder)
        body = "".join(line for line in text.splitlines() if "-----" not in line)
        fragments += [body[10:60], base64.b64decode(body).hex()[20:80]]
    return fragments


def _pem_of(holder: CertificateAuthority | Certificate) -> str:
    if isinstance(holder, CertificateAuthority):
        return keys.private_key_to_pem(holder.load_private_key()).decode()
    return holder.private_key_pem().decode()


def _issue_with_server_key(application, tls_profile, actor) -> None:
    submit(
        application=application,
        profile=tls_profile,
        method="ui",
        actor=actor,
        key_spec=KeySpec(algorithm="RSA_2048", common_name="a.example.test"),
    )


@pytest.mark.django_db(transaction=True)
def test_dump_contains_no_plaintext_key(application, tls_profile, actor):
    _issue_with_server_key(application, tls_profile, actor)
    fragments = _key_fragments()
    assert len(fragments) >= 7  # root, intermediate, leaf
    if connection.vendor == "sqlite":
        dump = "\n".join(connection.connection.iterdump())
    else:
        params = connection.settings_dict
        dump = subprocess.run(
            [
                "pg_dump",
                "-h",
                params["HOST"] or "127.0.0.1",
                "-p",
                str(params["PORT"] or 5432),
                "-U",
                params["USER"] or "postgres",
                params["NAME"],
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    assert "issuance_certificate" in dump
    for fragment in fragments:
        assert fragment.lower() not in dump.lower()


# --- Sealed values bind their row -------------------------------------------------------


def _server_key_certificate(application, tls_profile, actor, name: str) -> Certificate:
    submission = submit(
        application=application,
        profile=tls_profile,
        method="ui",
        actor=actor,
        key_spec=KeySpec(algorithm="EC_P256", common_name=name),
    )
    assert submission.certificate is not None
    return submission.certificate


@pytest.fixture
def two_held_keys(application, tls_profile, actor) -> tuple[Certificate, Certificate]:
    first = _server_key_certificate(application, tls_profile, actor, "a.example.test")
    second = _server_key_certificate(application, tls_profile, actor, "b.example.test")
    return first, second


def _move_key(source: Certificate, target: Certificate) -> Certificate:
    Certificate.objects.filter(pk=target.pk).update(private_key=source.private_key)
    return Certificate.objects.get(pk=target.pk)


@pytest.mark.django_db
def test_key_copied_to_another_certificate_does_not_open(two_held_keys):
    first, second = two_held_keys
    assert first.private_key.startswith("v2:")
    moved = _move_key(first, second)
    assert first.private_key_pem()  # where it was sealed, it still opens
    with pytest.raises(SecretError, match="sealed for another row or column"):
        moved.private_key_pem()


@pytest.mark.django_db
def test_ca_key_copied_into_a_certificate_does_not_open(two_held_keys, issuing_ca):
    _, target = two_held_keys
    Certificate.objects.filter(pk=target.pk).update(private_key=issuing_ca.private_key)
    with pytest.raises(SecretError):
        Certificate.objects.get(pk=target.pk).private_key_pem()


@pytest.mark.django_db
def test_key_pages_answer_a_clear_error_for_a_moved_key(client, personas, two_held_keys):
    first, second = two_held_keys
    _move_key(first, second)
    client.force_login(personas["admin"])
    app = second.application.name
    detail = client.get(reverse("issuance:certificate", args=[app, second.pk]))
    assert detail.status_code == 200 and b"Download PKCS#12" in detail.content
    download = client.post(
        reverse("issuance:pkcs12", args=[app, second.pk]), {"password": "long enough pw"}
    )
    assert download.status_code == 400
    assert b"cannot be opened" in download.content
    renewal = client.post(reverse("issuance:renew", args=[app, second.pk]), {"key": "reuse"})
    assert renewal.status_code == 400
    assert b"cannot be opened" in renewal.content
    assert not Certificate.objects.filter(replaces=second).exists()


@pytest.mark.django_db
def test_api_key_download_of_a_moved_key_is_a_conflict(personas, two_held_keys, actor):
    first, second = two_held_keys
    _move_key(first, second)
    _, token = credentials.create_token(personas["admin"], name="t", actor=actor)
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = f"/api/v1/applications/{second.application.name}/certificates/{second.pk}/pkcs12/"
    response = api.post(url, {"password": "long enough pw"}, format="json")
    assert response.status_code == 409
    assert "cannot be opened" in response.content.decode()


@pytest.mark.django_db
def test_sealing_needs_the_row_id():
    ca = CertificateAuthority(name="unsaved", slug="unsaved")
    with pytest.raises(ValueError, match="no primary key yet"):
        seal_for(ca, "private_key", b"secret")


def _as_v1(holder, field_name: str) -> str:
    """Re-write a stored value in the older format (bound to the column only)."""
    field = holder._meta.get_field(field_name)
    label = field.label_for(type(holder))
    plaintext = unseal_for(holder, field_name)
    legacy = seal(plaintext, label=label, row="ignored", version=LEGACY_VERSION)
    type(holder).objects.filter(pk=holder.pk).update(**{field_name: legacy})
    return legacy


@pytest.mark.django_db
def test_v1_values_still_open_and_rotate_kek_binds_them_to_their_row(two_held_keys, issuing_ca):
    first, second = two_held_keys
    expected = first.private_key_pem()
    legacy = _as_v1(first, "private_key")
    _as_v1(issuing_ca, "private_key")
    first.refresh_from_db()
    assert first.private_key == legacy and first.private_key_pem() == expected
    call_command("rotate_kek", stdout=io.StringIO())
    first.refresh_from_db()
    issuing_ca.refresh_from_db()
    assert first.private_key.startswith(f"v2:{keyring().current_id}:")
    assert issuing_ca.private_key.startswith("v2:")
    assert first.private_key_pem() == expected
    assert issuing_ca.load_private_key() is not None
    with pytest.raises(SecretError):
        _move_key(first, second).private_key_pem()


@pytest.mark.django_db(transaction=True)
def test_migration_binds_v1_values_to_their_row_and_back(application, tls_profile, actor):
    certificate = _server_key_certificate(application, tls_profile, actor, "m.example.test")
    expected = certificate.private_key_pem()
    ca = CertificateAuthority.objects.get(pk=certificate.ca_id)
    executor = MigrationExecutor(connection)
    executor.migrate([("certportal", "0001_initial")])  # backwards: v1, for older code
    certificate.refresh_from_db()
    ca.refresh_from_db()
    assert certificate.private_key.startswith("v1:") and ca.private_key.startswith("v1:")
    assert certificate.private_key_pem() == expected
    executor.loader.build_graph()
    executor.migrate([("certportal", "0002_reseal_secrets_bound_to_row")])
    certificate.refresh_from_db()
    ca.refresh_from_db()
    assert certificate.private_key.startswith("v2:") and ca.private_key.startswith("v2:")
    assert certificate.private_key_pem() == expected and ca.load_private_key()
