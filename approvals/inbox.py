"""How many held requests wait for a user: the nav badge on every page, in one COUNT query.

It answers what ``len(services.inbox(user))`` answers without loading a flow. A flow
keeps its steps as a JSON list and the index of the current one, so the current step's
role and named approvers are read in SQL with each database's JSON functions;
tests/approvals hold the count to the inbox's length.
"""

from __future__ import annotations

from typing import Any

from django.db.models import BooleanField, CharField, Exists, F, Func, OuterRef, Q

from applications.models import Membership
from approvals.models import ApprovalFlow
from certportal import permissions
from issuance.choices import RequestState


def waiting_count(user: Any) -> int:
    """The number of held requests whose current step the user may decide and has not
    decided yet: ``len(services.inbox(user))``, counted by the database."""
    if not user or not user.is_authenticated:
        return 0
    from certportal.api.models import ServiceAccount
    from issuance.acme.models import Order

    role_member = Membership.objects.filter(
        application_id=OuterRef("application_id"), user_id=user.pk, role=OuterRef("step_role")
    )
    eab_creator = Order.objects.filter(
        request_id=OuterRef("request_id"), account__eab_key__created_by_user_id=user.pk
    )
    return (
        ApprovalFlow.objects.filter(
            request__state=RequestState.PENDING_APPROVAL,
            application__in=permissions.applications_for(user, permissions.VIEW),
        )
        .exclude(decisions__approver=user)
        .exclude(request__requester_id=user.pk)
        .annotate(
            step_role=_CurrentStepRole(),
            named=_CurrentStepNames(user.pk),
            behind=_InRequesterPeople(user.pk),
            role_member=Exists(role_member),
            eab_creator=Exists(eab_creator),
        )
        .filter(Q(named=True) | Q(role_member=True), behind=False, eab_creator=False)
        .exclude(Exists(ServiceAccount.objects.filter(user_id=user.pk)))
        .count()
    )


class _JsonOnFlow(Func):
    """An expression over the flow's own JSON columns, written for each database."""

    def __init__(self, *params: Any, output_field: Any) -> None:
        super().__init__(
            F("steps"), F("current_step"), F("requester_people"), output_field=output_field
        )
        self.params = params

    def columns(self, compiler: Any) -> list[str]:
        return [compiler.compile(e)[0] for e in self.get_source_expressions()]

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        steps, current, people = self.columns(compiler)
        if connection.vendor == "postgresql":
            return self.postgresql(steps, current, people), list(self.params)
        return self.sqlite(steps, current, people), list(self.params)

    def postgresql(self, steps: str, current: str, people: str) -> str:
        raise NotImplementedError

    def sqlite(self, steps: str, current: str, people: str) -> str:
        raise NotImplementedError


class _CurrentStepRole(_JsonOnFlow):
    """The current step's role ("" for none); NULL once past the last step."""

    def __init__(self) -> None:
        super().__init__(output_field=CharField())

    def postgresql(self, steps: str, current: str, people: str) -> str:
        return f"({steps} -> ({current})::int ->> 'role')"

    def sqlite(self, steps: str, current: str, people: str) -> str:
        return f"json_extract({steps}, '$[' || {current} || '].role')"


class _CurrentStepNames(_JsonOnFlow):
    """Whether the current step names the user as an approver."""

    def __init__(self, user_id: int) -> None:
        super().__init__(user_id, output_field=BooleanField())

    def postgresql(self, steps: str, current: str, people: str) -> str:
        return (
            f"COALESCE(({steps} -> ({current})::int -> 'users') @> to_jsonb((%s)::bigint), false)"
        )

    def sqlite(self, steps: str, current: str, people: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM json_each({steps}, '$[' || {current} || '].users') "  # noqa: S608 - column names
            "WHERE json_each.value = %s)"
        )


class _InRequesterPeople(_JsonOnFlow):
    """Whether the user is one of the people behind the requesting service account."""

    def __init__(self, user_id: int) -> None:
        super().__init__(user_id, output_field=BooleanField())

    def postgresql(self, steps: str, current: str, people: str) -> str:
        return f"COALESCE({people} @> to_jsonb((%s)::bigint), false)"

    def sqlite(self, steps: str, current: str, people: str) -> str:
        # The columns are the ORM's compiled names; the user id is a parameter.
        return f"EXISTS (SELECT 1 FROM json_each({people}) WHERE json_each.value = %s)"  # noqa: S608
