"""The pipeline's gates: registered at start-up, asked for every accepted request, and
the context attached_profile hands the pipeline."""

from __future__ import annotations

import dataclasses

import pytest

from applications.services import create_application
from approvals.models import ApprovalFlow, ApprovalPolicy
from approvals.services import ApprovalGate
from issuance import gates
from issuance.choices import EnrollmentMethod, RequestState
from issuance.services import AttachedProfile, IssuanceRejected, attached_profile, submit

pytestmark = pytest.mark.django_db


def test_approvals_registers_its_gate_at_start_up():
    assert any(isinstance(gate, ApprovalGate) for gate in gates.registered())


def test_a_registered_gate_holds_a_request_without_approvals(
    application, tls_profile, make_csr, actor, hold_every_request
):
    hold_every_request()
    result = submit(
        application=application,
        profile=tls_profile,
        method=EnrollmentMethod.API,
        actor=actor,
        csr=make_csr("held.example.test", ["held.example.test"]),
    )
    assert result.request.state == RequestState.PENDING_APPROVAL
    assert result.certificate is None
    assert not ApprovalFlow.objects.exists()  # only the gate that holds writes


def test_the_approval_gate_opens_a_flow_when_a_policy_matches(
    application, tls_profile, make_csr, actor
):
    ApprovalPolicy.objects.create(application=application, name="all")
    found = attached_profile(application, tls_profile.slug)
    assert found is not None and found.has_policies
    result = submit(
        application=application,
        profile=found,
        method=EnrollmentMethod.API,
        actor=actor,
        csr=make_csr("flow.example.test", ["flow.example.test"]),
    )
    assert result.pending
    assert ApprovalFlow.objects.filter(request=result.request).count() == 1


def test_attached_profile_is_an_explicit_frozen_context(application, tls_profile):
    found = attached_profile(application, tls_profile.slug)
    assert isinstance(found, AttachedProfile)
    assert found.profile.pk == tls_profile.pk
    assert found.ca.pk == tls_profile.issuing_ca_id
    assert found.application_id == application.pk
    assert found.has_policies is False
    assert not hasattr(found.profile, "_attached_to")
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.has_policies = True  # type: ignore[misc]


def test_a_context_resolved_for_another_application_is_checked_again(
    application, tls_profile, make_csr, actor
):
    other = create_application(name="other", actor=actor)
    found = attached_profile(application, tls_profile.slug)
    assert found is not None
    with pytest.raises(IssuanceRejected) as refused:
        submit(
            application=other,
            profile=found,
            method=EnrollmentMethod.API,
            actor=actor,
            csr=make_csr("x.example.test", ["x.example.test"]),
        )
    assert refused.value.code == "profile_unavailable"
