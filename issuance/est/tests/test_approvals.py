"""A request held by an approval policy: 202 with Retry-After for the same CSR until the
decision, then the certificate, or 403 with the reason."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from applications.choices import Role
from approvals import services as approvals
from issuance.est.models import EstEnrollment, EstHeldRequest
from issuance.est.tests.conftest import ACTOR, new_csr
from issuance.models import Certificate, CertificateRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def held_policy(application: Any, personas: Any) -> None:
    spec = approvals.PolicySpec(name="all", steps=[approvals.StepSpec(required=1, role=Role.ADMIN)])
    approvals.save_policy(application, spec, actor=ACTOR)


@pytest.mark.parametrize("operation", ["simpleenroll", "serverkeygen"])
def test_held_then_approved_gives_the_certificate(
    enrollment: EstEnrollment,
    basic: Any,
    post_csr: Any,
    held_policy: None,
    personas: Any,
    operation: str,
) -> None:
    body = base64.b64encode(new_csr()[0])
    first = post_csr(enrollment.label, operation, body, auth=basic)
    assert first.status_code == 202
    assert int(first["Retry-After"]) > 0
    again = post_csr(enrollment.label, operation, body, auth=basic)
    assert again.status_code == 202
    assert CertificateRequest.objects.count() == 1  # recognised by the CSR, not resubmitted
    request = EstHeldRequest.objects.get().request
    approvals.decide(request, user=personas["admin"], verdict="approve", comment="", actor=ACTOR)
    done = post_csr(enrollment.label, operation, body, auth=basic)
    assert done.status_code == 200, done.content
    assert Certificate.objects.count() == 1


def test_held_then_rejected_is_403_with_the_reason(
    enrollment: EstEnrollment, basic: Any, post_csr: Any, held_policy: None, personas: Any
) -> None:
    body = base64.b64encode(new_csr()[0])
    assert post_csr(enrollment.label, "simpleenroll", body, auth=basic).status_code == 202
    request = EstHeldRequest.objects.get().request
    approvals.decide(
        request, user=personas["admin"], verdict="reject", comment="not this device", actor=ACTOR
    )
    refused = post_csr(enrollment.label, "simpleenroll", body, auth=basic)
    assert refused.status_code == 403
    assert b"not this device" in refused.content
    assert Certificate.objects.count() == 0


def test_another_csr_is_a_new_request(
    enrollment: EstEnrollment, basic: Any, post_csr: Any, held_policy: None
) -> None:
    for _ in range(2):
        body = base64.b64encode(new_csr()[0])
        assert post_csr(enrollment.label, "simpleenroll", body, auth=basic).status_code == 202
    assert CertificateRequest.objects.count() == 2


def test_credential_creator_may_not_approve(
    enrollment: EstEnrollment,
    basic: Any,
    post_csr: Any,
    held_policy: None,
    personas: dict[str, Any],
) -> None:
    """The Admin who made a Basic credential stands behind what it requests."""
    from approvals.models import ApprovalFlow
    from certportal.events import Actor
    from issuance.est import services

    admin = personas["admin"]
    _, password = services.create_credential(
        enrollment, username="admins-device", actor=Actor(user=admin)
    )
    own = base64.b64encode(new_csr()[0])
    auth = ("admins-device", password)
    assert post_csr(enrollment.label, "simpleenroll", own, auth=auth).status_code == 202
    other = base64.b64encode(new_csr()[0])
    assert post_csr(enrollment.label, "simpleenroll", other, auth=basic).status_code == 202
    flows = {
        held.credential.username: ApprovalFlow.objects.get(request_id=held.request_id)
        for held in EstHeldRequest.objects.select_related("credential")
    }
    assert not approvals.eligible(flows["admins-device"], admin)
    assert approvals.eligible(flows["device"], admin)
