"""Fixtures for SCEP tests: an enrollment on the Application's tls-server profile with
a static challenge, and a client pointed at its URL."""

from __future__ import annotations

from typing import Any

import pytest

from applications.models import Application
from certportal.events import Actor
from issuance.scep import services
from issuance.scep.models import ScepEnrollment
from issuance.scep.tests.support import ScepClient
from profiles.models import CertificateProfile

ACTOR = Actor(label="pytest")
STATIC = "static-challenge-0123456789"


@pytest.fixture
def enrollment(application: Application, tls_profile: CertificateProfile) -> ScepEnrollment:
    enrollment = services.enable(application, tls_profile, actor=ACTOR)
    services.set_static_challenge(enrollment, actor=ACTOR, challenge=STATIC)
    return enrollment


@pytest.fixture
def scep(client: Any, enrollment: ScepEnrollment) -> ScepClient:
    return ScepClient(client, "/scep/payments-api/tls-server/pkiclient.exe")
