"""Verbs on Applications and their members; the only writers of these models."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from applications.choices import Role
from applications.models import Application, Membership
from certportal import generation, permissions
from certportal.api.models import ApiToken, ServiceAccount
from certportal.api.services import TokenError
from certportal.event_types import EventType
from certportal.events import Actor, record
from certportal.refusals import MessageRefused

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from profiles.models import CertificateProfile


class MembershipError(MessageRefused):
    """A membership change refused: one that would break the Application (no Admin
    left), a role that does not exist, a service account in another Application."""

    default_code = "membership_refused"
    conflict_codes = frozenset({"last_admin"})


def member_candidate(username: str) -> User | None:
    """The active person of that username who may be made a member by name, or None.

    Service accounts never are: each is a member of the Application that made it, with
    the role it was made with, and acting for another Application would let that
    Application's Admins borrow its tokens. Every front (web, API) asks here, and
    set_member_role refuses them as well.
    """
    user: User | None = (
        get_user_model().objects.filter(username=username.strip(), is_active=True).first()
    )
    if user is None or ServiceAccount.objects.filter(user_id=user.pk).exists():
        return None
    return user


def _refuse_foreign_service_account(application: Application, user: User) -> None:
    if ServiceAccount.objects.filter(user_id=user.pk).exclude(application=application).exists():
        raise MembershipError(
            "A service account can only be a member of its own Application.",
            code="foreign_service_account",
        )


def create_application(
    *,
    name: str,
    actor: Actor,
    description: str = "",
    profiles: Iterable[CertificateProfile] = (),
    first_admin: User | None = None,
) -> Application:
    with transaction.atomic():
        application = Application.objects.create(name=name, description=description)
        application.profiles.set(list(profiles))
        record(
            EventType.APPLICATION_CREATED,
            actor=actor,
            obj=application,
            application=application,
            data={"profiles": [p.slug for p in application.profiles.all()]},
        )
        if first_admin is not None:
            set_member_role(application, first_admin, Role.ADMIN, actor=actor)
    return application


def set_member_role(application: Application, user: User, role: str, *, actor: Actor) -> Membership:
    """Add the user with the role, or change their role; the last Admin stays an Admin."""
    if role not in Role.values:
        raise MembershipError(f"unknown role {role!r}", "role", code="invalid_choice")
    _refuse_foreign_service_account(application, user)
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            application=application, user=user, defaults={"role": role}
        )
        if not created and membership.role != role:
            _refuse_losing_last_admin(membership)
            membership.role = role
            membership.save(update_fields=["role"])
        permissions.grant_role(user, application, role)
        record(
            EventType.MEMBER_ADDED if created else EventType.MEMBER_ROLE_CHANGED,
            actor=actor,
            obj=membership,
            application=application,
            data={"user": user.get_username(), "role": role},
        )
    return membership


def remove_member(application: Application, user: User, *, actor: Actor) -> None:
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(application=application, user=user)
        _refuse_losing_last_admin(membership)
        membership.delete()
        permissions.revoke_all(user, application)
        record(
            EventType.MEMBER_REMOVED,
            actor=actor,
            obj=application,
            application=application,
            data={"user": user.get_username()},
        )


def _refuse_losing_last_admin(membership: Membership) -> None:
    if membership.role != Role.ADMIN:
        return
    admins = Membership.objects.select_for_update().filter(
        application_id=membership.application_id, role=Role.ADMIN
    )
    if admins.count() <= 1:
        raise MembershipError("An Application must keep at least one Admin.", code="last_admin")


def update_application(
    application: Application,
    *,
    actor: Actor,
    description: str,
    profiles: Iterable[CertificateProfile],
) -> Application:
    """Change the description and the attached profiles (product admins).

    Detaching a profile stops new issuance from it; certificates already issued keep it.
    """
    wanted = list(profiles)
    with transaction.atomic():
        before = set(application.profiles.values_list("slug", flat=True))
        application.description = description
        application.save(update_fields=["description", "updated_at"])
        application.profiles.set(wanted)
        after = {p.slug for p in wanted}
        record(
            EventType.APPLICATION_UPDATED,
            actor=actor,
            obj=application,
            application=application,
            data={"attached": sorted(after - before), "detached": sorted(before - after)},
        )
    return application


# --- Service accounts ---------------------------------------------------------------------


def create_service_account(
    application: Application, *, name: str, role: str, actor: Actor, description: str = ""
) -> ServiceAccount:
    """A machine identity with a login-less backing user holding the role as a member."""
    if role not in Role.values:
        raise TokenError(f"Unknown role {role!r}.", "role")
    if ServiceAccount.objects.filter(application=application, name=name).exists():
        raise TokenError("A service account with this name already exists.", "name")
    username = f"svc.{application.name}.{name}"[:150]
    with transaction.atomic():
        user = get_user_model().objects.create_user(username=username, password=None)
        account = ServiceAccount.objects.create(
            application=application,
            user=user,
            name=name,
            role=role,
            description=description,
            created_by_id=actor.user_id,
        )
        set_member_role(application, user, role, actor=actor)
        record(
            EventType.SERVICE_ACCOUNT_CREATED,
            actor=actor,
            obj=account,
            application=application,
            data={"name": name, "role": role},
            outbox=False,
        )
    return account


def delete_service_account(account: ServiceAccount, *, actor: Actor) -> None:
    """Deactivate the backing user and revoke its tokens; the audit trail keeps the name."""
    with transaction.atomic():
        remove_member(account.application, account.user, actor=actor)
        ApiToken.objects.filter(user=account.user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        type(account.user).objects.filter(pk=account.user.pk).update(is_active=False)
        generation.changed()  # cached tokens and grants of this user go at commit
        record(
            EventType.SERVICE_ACCOUNT_DELETED,
            actor=actor,
            obj=account.application,
            application=account.application,
            data={"name": account.name},
            outbox=False,
        )
        account.delete()
