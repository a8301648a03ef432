"""A database dump holds no private key in plaintext (SQLite .dump and pg_dump)."""

from __future__ import annotations

import base64
import subprocess

import pytest
from django.db import connection

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
