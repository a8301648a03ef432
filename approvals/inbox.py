"""How many held requests wait for a user: the nav badge on every page, in one COUNT query.

It answers what ``len(services.inbox(user))`` answers without loading a flow. A flow
keeps its steps as a JSON list and the index of the current one, so the current step's
role and named approvers are read in SQL with each database's JSON functions;
approvals/tests/test_inbox_count.py holds the count to the inbox's length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import BooleanField, CharField, Exists, Expression, F, OuterRef, Q

from applications.models import Membership
from approvals.models import ApprovalFlow
from certportal import permissions
from issuance.choices import RequestState

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler


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


class _JsonOnFlow(Expression):
    """An expression over the flow's own JSON columns, written for each database; the
    user id is its one parameter."""

    def __init__(self, *params: int, output_field: Any) -> None:
        super().__init__(output_field=output_field)
        self.columns: list[Any] = [F("steps"), F("current_step"), F("requester_people")]
        self.params = params

    def get_source_expressions(self) -> list[Any]:
        return self.columns

    def set_source_expressions(self, exprs: Any) -> None:
        self.columns = list(exprs)

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, tuple[str | int, ...]]:
        steps, current, people = (compiler.compile(column)[0] for column in self.columns)
        if connection.vendor == "postgresql":
            return self.postgresql(steps, current, people), self.params
        return self.sqlite(steps, current, people), self.params

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
