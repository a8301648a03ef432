"""Fixtures for syncs' unit tests: an AWS connection nobody reaches, and an ACM sync."""

from __future__ import annotations

from typing import Any

import pytest

from issuance import services as issuance
from issuance.choices import EnrollmentMethod
from syncs import services
from syncs.models import Connection, Sync

SECRET = "unit-test-secret-key-value"


@pytest.fixture
def issue(application: Any, tls_profile: Any, actor: Any) -> Any:
    def make(name: str = "www.example.test") -> Any:
        return issuance.submit(
            application=application,
            profile=tls_profile,
            method=EnrollmentMethod.UI,
            actor=actor,
            key_spec=issuance.KeySpec(algorithm="EC_P256", common_name=name, sans=[name]),
        ).certificate

    return make


@pytest.fixture
def connection(application: Any, actor: Any) -> Connection:
    created = services.save_connection(
        application,
        name="aws",
        kind="aws",
        credentials={"access_key_id": "AKIDUNIT", "secret_access_key": SECRET},
        config={},
        actor=actor,
    )
    # An address no test reaches: a push or test through it fails at once, "refused".
    Connection.objects.filter(pk=created.pk).update(config={"endpoint_url": "http://127.0.0.1:9"})
    created.refresh_from_db()
    return created


@pytest.fixture
def acm_sync(application: Any, tls_profile: Any, connection: Connection, actor: Any) -> Sync:
    return services.save_sync(
        application,
        services.SyncSpec(
            name="acm",
            destination="aws-acm",
            connection=connection,
            profile=tls_profile,
            options={"region": "us-east-1"},
        ),
        actor=actor,
    )
