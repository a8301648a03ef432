"""Approval policies: which certificate requests wait for a human decision, and the
decisions that release or end them.

The pipeline knows approvals only as a gate (``ApprovalGate``, registered with
``issuance.gates`` in ``ApprovalsConfig.ready``). When a policy holds a request, an
ApprovalFlow snapshots the policy's steps (who may approve, how many) so that later
edits to the policy do not move the goalposts of requests already waiting.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Exists

from applications.choices import Role
from applications.models import Application, Membership
from approvals.choices import Trigger, Verdict
from approvals.models import (
    ApprovalDecision,
    ApprovalFlow,
    ApprovalPolicy,
    ApprovalSettings,
    ApprovalStep,
)
from certportal import permissions
from certportal.event_types import EventType
from certportal.events import Actor, record
from certportal.refusals import Refused
from issuance.choices import EnrollmentMethod, RequestState

if TYPE_CHECKING:
    from issuance.models import CertificateRequest
    from issuance.services import Submission
    from pki.policy import Decision
    from profiles.models import CertificateProfile


class ApprovalError(Refused):
    """A decision or policy change refused; ``code`` is machine-readable."""

    # A decision on a request that is no longer waiting (or whose renewal was settled
    # another way), and a person not (or no longer) allowed to decide it.
    conflict_codes = frozenset(
        {"not_pending", "already_decided", "already_renewed", "already_revoked"}
    )
    forbidden_codes = frozenset({"not_eligible", "own_request"})


# --- The pipeline's gate ----------------------------------------------------------------


class ApprovalGate:
    """Approval policies as a gate of the pipeline (issuance.gates.Gate)."""

    def present(self, application_id: int) -> Exists:
        return active_policies_exist(application_id)

    def begin(self, application: Application, present: bool | None) -> None:
        start_pipeline_call(application, present)

    def may_hold(self, application: Application) -> bool:
        return may_hold(application)

    def hold_if_required(self, request: CertificateRequest, decision: Decision) -> bool:
        return open_flow_if_required(request, decision)


def open_flow_if_required(request: CertificateRequest, decision: Decision) -> bool:
    """Open an approval flow for the request if a policy holds it; True if one did.

    Called inside the pipeline's transaction, before the request row is inserted: the
    flow row written here refers to it through a deferred foreign key, so both commit
    (or roll back) together.
    """
    policies = _active_policies_for(request)
    if not policies:
        return False
    if _renewal_bypasses(request, decision):
        return False
    is_service = _is_service_account(request.requester_id)
    for policy in policies:
        if is_service and policy.bypass_service_accounts:
            continue
        if policy_matches(policy, request, decision):
            _open_flow(request, policy)
            return True
    return False


def may_hold(application: Application) -> bool:
    """Whether this pipeline call may hold a request for approval (and write its flow):
    the Application has an active policy."""
    return bool(_active_policies_for_application(application))


def start_pipeline_call(application: Application, present: bool | None) -> None:
    """The pipeline calls this first: policies are loaded afresh once per call, then shared
    by every request of the batch (they all carry this same Application instance).
    ``present`` is what ``attached_profile`` cached from ``active_policies_exist``: False
    spares the query."""
    application.__dict__.pop("_active_approval_policies", None)
    if present is False:
        application._active_approval_policies = []  # type: ignore[attr-defined]


def active_policies_exist(application_id: int) -> Exists:
    """An expression for querysets: does the Application have an active policy?"""
    return Exists(ApprovalPolicy.objects.filter(application_id=application_id, is_active=True))


def _active_policies_for(request: CertificateRequest) -> list[ApprovalPolicy]:
    """The Application's active policies, as loaded for the current pipeline call."""
    return _active_policies_for_application(request.application)


def _active_policies_for_application(application: Application) -> list[ApprovalPolicy]:
    cached = getattr(application, "_active_approval_policies", None)
    if cached is None:
        cached = _active_policies(application.pk)
        application._active_approval_policies = cached  # type: ignore[attr-defined]
    return cached


def _active_policies(application_id: int) -> list[ApprovalPolicy]:
    return list(
        ApprovalPolicy.objects.filter(application_id=application_id, is_active=True)
        .prefetch_related("profiles", "steps__approvers")
        .order_by("name")
    )


def policy_matches(policy: ApprovalPolicy, request: CertificateRequest, decision: Any) -> bool:
    """Profiles first; then either every request, or any one of the set conditions."""
    profile_ids = {p.pk for p in policy.profiles.all()}
    if profile_ids and request.profile_id not in profile_ids:
        return False
    if policy.trigger == Trigger.ANY:
        return True
    names = _names(decision)
    days = round((decision.not_after - decision.not_before).total_seconds() / 86400)
    return (
        (policy.on_wildcard and any(n.startswith("*.") for n in names))
        or (policy.on_validity_over_days is not None and days > policy.on_validity_over_days)
        or any(fnmatch.fnmatch(n, p.lower()) for n in names for p in policy.on_san_patterns)
        or (policy.on_server_keygen and not request.csr_pem)
    )


def _names(decision: Any) -> list[str]:
    return [
        *(n.lower() for n in decision.dns_names),
        *map(str, decision.ip_addresses),
        *decision.emails,
        *decision.uris,
    ]


def _renewal_bypasses(request: CertificateRequest, decision: Any) -> bool:
    if request.replaces_id is None or request.method != EnrollmentMethod.RENEWAL:
        return False
    if not renewals_bypass(request.application_id):
        return False
    old = request.replaces
    if old is None:
        return False
    same_cn = (decision.common_name or "") == (old.common_name or "")
    return same_cn and sorted(_names(decision)) == sorted(s.lower() for s in old.sans)


def renewals_bypass(application_id: int) -> bool:
    value = (
        ApprovalSettings.objects.filter(application_id=application_id)
        .values_list("renewals_bypass", flat=True)
        .first()
    )
    return True if value is None else bool(value)


def _is_service_account(user_id: int | None) -> bool:
    if user_id is None:
        return False
    from certportal.api.models import ServiceAccount

    return ServiceAccount.objects.filter(user_id=user_id).exists()


def _open_flow(request: CertificateRequest, policy: ApprovalPolicy) -> None:
    from certportal.api.services import people_behind

    steps = [
        {
            "role": step.approver_role,
            "users": sorted(u.pk for u in step.approvers.all()),
            "required": step.required,
        }
        for step in policy.steps.all()
    ]
    ApprovalFlow.objects.create(
        request_id=request.pk,
        application_id=request.application_id,
        policy=policy,
        policy_name=policy.name,
        steps=steps,
        # Snapshot: a service account deleted later must not free its creator to approve.
        requester_people=sorted(people_behind(request.requester_id))
        if request.requester_id is not None
        else [],
    )


# --- Decisions ----------------------------------------------------------------------------


def people_behind(flows: Sequence[ApprovalFlow]) -> dict[int, set[int]]:
    """For each flow, the people who count as its requester and so may not decide it: the
    requester, the people behind the service account it requested as (``requester_people``),
    for an ACME request whoever created the EAB credential its account was bound with, and
    for an EST request whoever created the Basic credential it came with."""
    behind = {f.pk: {f.request.requester_id, *f.requester_people} - {None} for f in flows}
    acme = {f.request_id: f.pk for f in flows if f.request.method == EnrollmentMethod.ACME}
    if acme:
        from issuance.acme.models import Order

        creators = Order.objects.filter(request_id__in=acme).values_list(
            "request_id", "account__eab_key__created_by_user_id"
        )
        for request_id, creator in creators:
            if creator is not None:
                behind[acme[request_id]].add(creator)
    est = {f.request_id: f.pk for f in flows if f.request.method == EnrollmentMethod.EST}
    if est:
        from issuance.est.models import EstHeldRequest

        makers = EstHeldRequest.objects.filter(request_id__in=est).values_list(
            "request_id", "credential__created_by_user_id"
        )
        for request_id, maker in makers:
            if maker is not None:
                behind[est[request_id]].add(maker)
    return behind


def eligible(flow: ApprovalFlow, user: Any, *, role: str | None = None) -> bool:
    """May the user decide the flow's current step? Never a service account, never the
    requester nor the people behind the credentials it requested with."""
    if not user or not user.is_authenticated or _is_service_account(user.pk):
        return False
    return _eligible(flow, user, role, people_behind([flow])[flow.pk])


def _eligible(flow: ApprovalFlow, user: Any, role: str | None, behind: set[int]) -> bool:
    if user.pk in behind:
        return False
    if flow.current_step >= len(flow.steps):
        return False
    step = flow.steps[flow.current_step]
    if user.pk in step["users"]:
        return permissions.has_perm(user, permissions.VIEW, flow.application)
    if not step["role"]:
        return False
    if role is None:
        role = (
            Membership.objects.filter(application_id=flow.application_id, user=user)
            .values_list("role", flat=True)
            .first()
        )
    return role == step["role"]


def decide(
    request: CertificateRequest, *, user: Any, verdict: str, comment: str, actor: Actor
) -> Submission | None:
    """Record one approver's verdict. A rejection ends the request; the approval that
    completes the last step issues the certificate through the pipeline.

    Approving a held renewal whose certificate was meanwhile renewed another way (or
    revoked) ends the request as failed, with the reason, and raises ApprovalError
    ``already_renewed`` (``already_revoked``) once that is committed."""
    from issuance import services as issuance

    if verdict not in Verdict.values:
        raise ApprovalError("invalid", f"Unknown verdict {verdict!r}.", "verdict")
    with transaction.atomic():
        flow = _locked_flow(request)
        _check_can_decide(flow, user)
        closed = None
        if verdict == Verdict.APPROVE:
            closed = issuance.close_renewed_elsewhere(flow.request, actor=actor)
        if closed is None:
            return _record_decision(
                request, flow, user=user, verdict=verdict, comment=comment, actor=actor
            )
    request.state = flow.request.state
    raise ApprovalError(closed.code, closed.message)


def _record_decision(
    request: CertificateRequest,
    flow: ApprovalFlow,
    *,
    user: Any,
    verdict: str,
    comment: str,
    actor: Actor,
) -> Submission | None:
    from issuance import services as issuance

    step = flow.current_step
    ApprovalDecision.objects.create(
        flow=flow,
        step=step,
        approver=user,
        approver_label=user.get_username(),
        verdict=verdict,
        comment=comment,
    )
    data: dict[str, Any] = {"step": step + 1, "comment": comment, "policy": flow.policy_name}
    if verdict == Verdict.REJECT:
        record(
            EventType.REQUEST_APPROVAL_REFUSED,
            actor=actor,
            obj=flow.request,
            application=flow.application,
            data=data,
        )
        issuance.reject_request(flow.request, actor=actor, reason=comment)
        request.state = flow.request.state
        return None
    done = _advance(flow)
    # The event says where the flow went, so notices reach the next step's approvers
    # (or the requester) as of this decision, whatever happens to the flow later.
    data["final"] = done
    data["next_step"] = flow.current_step + 1 if flow.current_step > step and not done else None
    record(
        EventType.REQUEST_APPROVAL_GIVEN,
        actor=actor,
        obj=flow.request,
        application=flow.application,
        data=data,
    )
    if not done:
        return None
    submission = issuance.issue_approved(flow.request, actor=actor)
    request.state = submission.request.state
    return submission


def _locked_flow(request: CertificateRequest) -> ApprovalFlow:
    flow = (
        ApprovalFlow.objects.select_for_update()
        .select_related("request", "application")
        .filter(request_id=request.pk)
        .first()
    )
    if flow is None:
        raise ApprovalError("not_pending", "This request is not waiting for approval.")
    return flow


def _check_can_decide(flow: ApprovalFlow, user: Any) -> None:
    if flow.request.state != RequestState.PENDING_APPROVAL:
        raise ApprovalError(
            "not_pending", f"This request is {flow.request.get_state_display().lower()}."
        )
    if _is_service_account(user.pk):
        raise ApprovalError(
            "not_eligible", "A service account cannot decide on requests; a person must."
        )
    if user.pk == flow.request.requester_id:
        raise ApprovalError("own_request", "You cannot decide on your own request.")
    behind = people_behind([flow])[flow.pk]
    if user.pk in behind:
        raise ApprovalError(
            "own_request",
            "You cannot decide on a request made with a service account, API token or "
            "EAB credential you created.",
        )
    if ApprovalDecision.objects.filter(flow=flow, approver=user).exists():
        raise ApprovalError("already_decided", "You have already decided on this request.")
    if not _eligible(flow, user, None, behind):
        raise ApprovalError(
            "not_eligible", "You are not an approver of this request's current step."
        )


def _advance(flow: ApprovalFlow) -> bool:
    """Move past the current step if it has its approvals; True when every step has."""
    step = flow.steps[flow.current_step]
    given = ApprovalDecision.objects.filter(
        flow=flow, step=flow.current_step, verdict=Verdict.APPROVE
    ).count()
    if given < step["required"]:
        return False
    flow.current_step += 1
    ApprovalFlow.objects.filter(pk=flow.pk).update(current_step=flow.current_step)
    return flow.current_step >= len(flow.steps)


def request_step_approvers(request_id: Any, step: int) -> list[Any]:
    """The approvers of a held request's step (0-based); none if no flow holds it."""
    flow = ApprovalFlow.objects.select_related("request").filter(request_id=request_id).first()
    return [] if flow is None else step_approvers(flow, step)


def step_approvers(flow: ApprovalFlow, step: int) -> list[Any]:
    """The people who may decide the flow's step (0-based) and have not decided the flow:
    its named users still members of the Application and the active members holding its
    role, never the requester, the people behind it, nor a service account."""
    from django.contrib.auth import get_user_model

    from certportal.api.models import ServiceAccount

    if step >= len(flow.steps):
        return []
    wanted = flow.steps[step]
    members = Membership.objects.filter(application_id=flow.application_id, user__is_active=True)
    named = set(members.filter(user_id__in=wanted["users"]).values_list("user_id", flat=True))
    by_role: set[int] = set()
    if wanted["role"]:
        by_role = set(members.filter(role=wanted["role"]).values_list("user_id", flat=True))
    excluded = people_behind([flow])[flow.pk]
    decided = ApprovalDecision.objects.filter(flow=flow).values_list("approver_id", flat=True)
    excluded |= set(decided)
    ids = (named | by_role) - excluded
    machines = ServiceAccount.objects.filter(user_id__in=ids).values_list("user_id", flat=True)
    ids -= set(machines)
    return list(get_user_model().objects.filter(pk__in=ids).order_by("username"))


def inbox(user: Any) -> list[ApprovalFlow]:
    """Held requests whose current step the user may decide and has not yet decided."""
    if not user or not user.is_authenticated or _is_service_account(user.pk):
        return []
    flows = list(
        ApprovalFlow.objects.filter(
            request__state=RequestState.PENDING_APPROVAL,
            application__in=permissions.applications_for(user, permissions.VIEW),
        )
        .exclude(decisions__approver=user)
        .select_related("request", "request__profile", "application")
        .order_by("created_at")
    )
    roles = dict(Membership.objects.filter(user=user).values_list("application_id", "role"))
    behind = people_behind(flows)
    return [f for f in flows if _eligible(f, user, roles.get(f.application_id), behind[f.pk])]


# --- Policies -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSpec:
    """One step as asked for: a role and/or named users, and how many must approve."""

    required: int = 1
    role: str = ""
    users: Sequence[Any] = ()


@dataclass(frozen=True)
class PolicySpec:
    name: str
    steps: Sequence[StepSpec]
    is_active: bool = True
    profiles: Sequence[CertificateProfile] = ()
    trigger: str = Trigger.ANY
    on_wildcard: bool = False
    on_validity_over_days: int | None = None
    on_san_patterns: Sequence[str] = ()
    on_server_keygen: bool = False
    bypass_service_accounts: bool = False


def save_policy(
    application: Application,
    spec: PolicySpec,
    *,
    actor: Actor,
    policy: ApprovalPolicy | None = None,
) -> ApprovalPolicy:
    """Create the policy, or replace an existing one's settings and steps."""
    _check_policy(application, spec, policy)
    fields = {
        "name": spec.name,
        "is_active": spec.is_active,
        "trigger": spec.trigger,
        "on_wildcard": spec.on_wildcard,
        "on_validity_over_days": spec.on_validity_over_days,
        "on_san_patterns": list(spec.on_san_patterns),
        "on_server_keygen": spec.on_server_keygen,
        "bypass_service_accounts": spec.bypass_service_accounts,
    }
    with transaction.atomic():
        created = policy is None
        if policy is None:
            policy = ApprovalPolicy.objects.create(application=application, **fields)
        else:
            for name, value in fields.items():
                setattr(policy, name, value)
            policy.save()
            policy.steps.all().delete()
        policy.profiles.set(list(spec.profiles))
        for position, step_spec in enumerate(spec.steps):
            step = ApprovalStep.objects.create(
                policy=policy,
                position=position,
                approver_role=step_spec.role,
                required=step_spec.required,
            )
            step.approvers.set(list(step_spec.users))
        record(
            EventType.APPROVAL_POLICY_CREATED if created else EventType.APPROVAL_POLICY_UPDATED,
            actor=actor,
            obj=policy,
            application=application,
            data=describe_policy(policy),
            outbox=False,
        )
    return policy


def _check_policy(
    application: Application, spec: PolicySpec, policy: ApprovalPolicy | None
) -> None:
    if not spec.name.strip():
        raise ApprovalError("required", "Give the policy a name.", "name")
    clash = ApprovalPolicy.objects.filter(application=application, name=spec.name)
    if policy is not None:
        clash = clash.exclude(pk=policy.pk)
    if clash.exists():
        raise ApprovalError("duplicate", "A policy with this name already exists.", "name")
    if spec.trigger not in Trigger.values:
        raise ApprovalError("invalid_choice", f"Unknown trigger {spec.trigger!r}.", "trigger")
    attached = set(application.profiles.values_list("pk", flat=True))
    if any(p.pk not in attached for p in spec.profiles):
        raise ApprovalError(
            "profile_unavailable", "A profile is not attached to this Application.", "profiles"
        )
    if not spec.steps:
        raise ApprovalError("required", "A policy needs at least one step.", "steps")
    members = set(
        Membership.objects.filter(application=application).values_list("user_id", flat=True)
    )
    for step in spec.steps:
        _check_step(step, members)
        if any(_is_service_account(u.pk) for u in step.users):
            raise ApprovalError(
                "service_account", "Service accounts cannot be approvers; name people.", "steps"
            )


def _check_step(step: StepSpec, members: set[int]) -> None:
    if step.role and step.role not in Role.values:
        raise ApprovalError("invalid_choice", f"Unknown role {step.role!r}.", "steps")
    if not step.role and not step.users:
        raise ApprovalError("required", "Each step needs a role or named approvers.", "steps")
    if any(u.pk not in members for u in step.users):
        raise ApprovalError(
            "not_member", "Named approvers must be members of this Application.", "steps"
        )
    if step.required < 1:
        raise ApprovalError("invalid", "A step needs at least one approval.", "steps")
    if not step.role and step.required > len(step.users):
        raise ApprovalError(
            "invalid", "A step cannot require more approvals than it has approvers.", "steps"
        )


def delete_policy(policy: ApprovalPolicy, *, actor: Actor) -> None:
    """Delete a policy; requests already held keep their snapshot and can be decided."""
    with transaction.atomic():
        record(
            EventType.APPROVAL_POLICY_DELETED,
            actor=actor,
            obj=policy,
            application=policy.application,
            data={"name": policy.name},
            outbox=False,
        )
        policy.delete()


def set_renewals_bypass(application: Application, enabled: bool, *, actor: Actor) -> None:
    with transaction.atomic():
        ApprovalSettings.objects.update_or_create(
            application=application, defaults={"renewals_bypass": enabled}
        )
        record(
            EventType.APPROVAL_SETTINGS_UPDATED,
            actor=actor,
            obj=application,
            application=application,
            data={"renewals_bypass": enabled},
            outbox=False,
        )


def describe_policy(policy: ApprovalPolicy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "is_active": policy.is_active,
        "profiles": [p.slug for p in policy.profiles.all()],
        "trigger": policy.trigger,
        "steps": [
            {
                "role": s.approver_role,
                "users": [u.get_username() for u in s.approvers.all()],
                "required": s.required,
            }
            for s in policy.steps.all()
        ],
    }


def step_labels(flow: ApprovalFlow, users: Iterable[Any] = ()) -> list[str]:
    """Human labels of the flow's steps, e.g. "2 of role admin"."""
    names = {u.pk: u.get_username() for u in users}
    labels = []
    for step in flow.steps:
        who = [f"role {step['role']}"] if step["role"] else []
        who += [names.get(pk, f"user #{pk}") for pk in step["users"]]
        labels.append(f"{step['required']} of {', '.join(who)}")
    return labels
