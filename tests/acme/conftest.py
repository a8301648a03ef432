"""Real ACME clients against the portal in a live server thread.

Validation tasks run through django-q2's sync mode inside the live server's request
thread (see issuance/acme/tests/conftest.py: acme_settings), so the real task code runs
against the real challenge responders the clients start; names resolve through an
in-process DNS server that answers 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest

from applications.models import Application
from certportal.events import Actor
from issuance.acme import services
from issuance.acme.tests.conftest import acme_settings, dns_server  # noqa: F401


@pytest.fixture
def directory_url(live_server: Any, application: Application) -> str:
    return f"{live_server.url}/acme/{application.name}/tls-server/directory"


@pytest.fixture
def eab(application: Application) -> tuple[str, str]:
    key, hmac_key = services.create_eab_key(application, name="ci", actor=Actor(label="pytest"))
    return key.key_id, hmac_key
