"""The one place that maps Application roles to django-guardian object permissions.

Product admins (superusers) hold every permission. Everyone else holds, on each
Application they belong to, exactly the permissions of their single role. Views and API
endpoints fetch objects through ``applications_for(user, perm)`` so that anything outside
the user's scope is simply not found (404), never "forbidden".

The Application model is named by its label (``applications.Application``), as a
ForeignKey names it: applications' modules import this one, never the other way round.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, cast

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db.models import BigIntegerField, QuerySet
from django.db.models.functions import Cast
from guardian.core import ObjectPermissionChecker
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, remove_perm

from certportal.roles import Role

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    from applications.models import Application

    AnyUser = User | AnonymousUser

VIEW = "view_application"
ISSUE = "issue_certificate"
REVOKE = "revoke_certificate"
DOWNLOAD_KEY = "download_private_key"
MANAGE = "manage_application"

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.AUDITOR: frozenset({VIEW}),
    Role.OPERATOR: frozenset({VIEW, ISSUE, REVOKE, DOWNLOAD_KEY}),
    Role.ADMIN: frozenset({VIEW, ISSUE, REVOKE, DOWNLOAD_KEY, MANAGE}),
}
ALL_PERMISSIONS = ROLE_PERMISSIONS[Role.ADMIN]


@cache
def application_model() -> type[Application]:
    """The model whose rows permissions are granted on."""
    return cast("type[Application]", apps.get_model("applications", "Application"))


def is_product_admin(user: AnyUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_superuser)


def grant_role(user: User, application: Application, role: str) -> None:
    """Make the user's permissions on the application exactly those of the role."""
    wanted = ROLE_PERMISSIONS[role]
    for perm in ALL_PERMISSIONS - wanted:
        remove_perm(perm, user, application)
    for perm in wanted:
        assign_perm(perm, user, application)
    forget_cached_permissions(user)


def revoke_all(user: User, application: Application) -> None:
    for perm in ALL_PERMISSIONS:
        remove_perm(perm, user, application)
    forget_cached_permissions(user)


def applications_for(user: AnyUser, perm: str = VIEW) -> QuerySet[Application]:
    """Applications on which the user holds perm; everything for product admins."""
    if not user.is_authenticated or not user.is_active:
        return application_model().objects.none()
    if is_product_admin(user):
        return application_model().objects.all()
    # guardian's own rows, read with one indexed subquery: get_objects_for_user builds the
    # same answer with several extra queries and far more ORM work per request.
    granted = (
        UserObjectPermission.objects.filter(
            user_id=user.pk,
            content_type=ContentType.objects.get_for_model(application_model()),
            permission__codename=perm,
        )
        .annotate(application_id=Cast("object_pk", BigIntegerField()))
        .values("application_id")
    )
    return application_model().objects.filter(pk__in=granted)


def has_perm(user: AnyUser, perm: str, application: Application) -> bool:
    """Whether the user holds perm on the application.

    One guardian checker lives on the user object for the length of a request, so every
    tab and control check on a page after the first costs no query.
    """
    if is_product_admin(user):
        return True
    if not user.is_authenticated or not user.is_active:
        return False
    checker = getattr(user, "_certportal_checker", None)
    if checker is None:
        checker = ObjectPermissionChecker(user)
        user._certportal_checker = checker  # type: ignore[attr-defined]
    return bool(checker.has_perm(perm, application))


def forget_cached_permissions(user: AnyUser) -> None:
    """Drop the per-request checker (after a role change on this same user object)."""
    if hasattr(user, "_certportal_checker"):
        del user._certportal_checker
