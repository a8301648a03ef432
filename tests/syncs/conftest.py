"""Real endpoints for sync tests: moto's server for AWS (a subprocess on loopback), and
helpers that issue certificates and run the outbox and the push workers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from certportal import outbox
from certportal.models import OutboxEvent
from issuance import services as issuance
from issuance.choices import EnrollmentMethod
from syncs import lifecycle
from syncs.backends import aws

MOTO_PORT = 18601
MOTO_NOAUTH_PORT = 18602


def _moto_bin() -> str:
    found = Path(sys.executable).with_name("moto_server")
    return str(found) if found.exists() else (shutil.which("moto_server") or "moto_server")


def _start_moto(port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [_moto_bin(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("moto_server did not start")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server on a fixed loopback port for the whole session."""
    process = _start_moto(MOTO_PORT)
    try:
        yield f"http://127.0.0.1:{MOTO_PORT}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def moto(moto_server: str, settings: Any) -> Iterator[str]:
    """A clean moto (state reset) and the portal allowed to reach loopback."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=5)
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = True
    aws.forget_clients()
    yield moto_server
    aws.CLIENT_HOOKS.clear()
    aws.forget_clients()


@pytest.fixture(scope="session")
def moto_with_auth() -> Iterator[str]:
    """A moto server that checks credentials (IAM) from the first request."""
    process = _start_moto(MOTO_NOAUTH_PORT, {"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        yield f"http://127.0.0.1:{MOTO_NOAUTH_PORT}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def admin_api(personas: dict[str, Any]) -> APIClient:
    client = APIClient()
    client.force_authenticate(personas["admin"])
    return client


@pytest.fixture
def issue(application: Any, tls_profile: Any, actor: Any) -> Callable[..., Any]:
    """Issue a certificate with a server-generated key (the portal holds it)."""

    def make(name: str = "www.example.test") -> Any:
        return issuance.submit(
            application=application,
            profile=tls_profile,
            method=EnrollmentMethod.UI,
            actor=actor,
            key_spec=issuance.KeySpec(algorithm="EC_P256", common_name=name, sans=[name]),
        ).certificate

    return make


def deliver_events() -> int:
    """What the outbox drain does after commit: run every consumer over fresh events."""
    return outbox.dispatch(
        list(OutboxEvent.objects.filter(dispatched_at__isnull=True).values_list("pk", flat=True))
    )


def push(**kwargs: Any) -> int:
    deliver_events()
    return lifecycle.push_due(**kwargs)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: Any) -> tuple[Any, str]:
    """A trustme CA and its certificate on disk (the portal's CERTPORTAL_SYNC_CA_BUNDLE)."""
    import trustme

    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


@pytest.fixture
def key_vault(test_ca: tuple[Any, str], settings: Any) -> Iterator[Any]:
    from tests.syncs.fakes import KeyVaultFake

    settings.CERTPORTAL_SYNC_CA_BUNDLE = test_ca[1]
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = True
    with KeyVaultFake(test_ca[0]) as fake:
        yield fake


@pytest.fixture
def cloudflare_api(test_ca: tuple[Any, str], settings: Any) -> Iterator[Any]:
    from tests.syncs.fakes import CloudflareFake

    settings.CERTPORTAL_SYNC_CA_BUNDLE = test_ca[1]
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = True
    with CloudflareFake(test_ca[0]) as fake:
        yield fake
