"""The tabs of an Application's pages, the sections of its Overview and Enrollment tabs,
and the columns of the Application list.

Features register what they add (in their AppConfig.ready()), so the portal shows a tab
only when the feature exists and only to roles that hold its permission; no feature
edits the portal's templates to appear there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from certportal import permissions

if TYPE_CHECKING:
    from django.http import HttpRequest

    from applications.models import Application


@dataclass(frozen=True)
class Tab:
    """A tab of the Application pages: reversed with kwargs={"slug": application.name}."""

    key: str
    label: str
    url_name: str
    permission: str = permissions.VIEW
    order: int = 100


@dataclass(frozen=True)
class EnrollmentSection:
    """A block of the Enrollment tab: a template and the context it needs."""

    key: str
    template: str
    context: Callable[[HttpRequest, Application], dict[str, Any]]
    permission: str = permissions.VIEW
    order: int = 100


@dataclass(frozen=True)
class OverviewSection:
    """A block of the Overview tab (every member sees it): a template and its context."""

    key: str
    template: str
    context: Callable[[HttpRequest, Application], dict[str, Any]]
    order: int = 100


@dataclass(frozen=True)
class ListColumn:
    """A column of the Application list: the queryset is annotated with ``key`` (one
    query for the whole page), shown under ``label``."""

    key: str
    label: str
    annotation: Callable[[], Any]
    order: int = 100


_TABS: dict[str, Tab] = {}
_SECTIONS: dict[str, EnrollmentSection] = {}
_OVERVIEW: dict[str, OverviewSection] = {}
_COLUMNS: dict[str, ListColumn] = {}


def register_tab(tab: Tab) -> None:
    _TABS[tab.key] = tab


def register_enrollment_section(section: EnrollmentSection) -> None:
    _SECTIONS[section.key] = section


def register_overview_section(section: OverviewSection) -> None:
    _OVERVIEW[section.key] = section


def register_list_column(column: ListColumn) -> None:
    _COLUMNS[column.key] = column


def overview_sections() -> list[OverviewSection]:
    return sorted(_OVERVIEW.values(), key=lambda s: (s.order, s.key))


def list_columns() -> list[ListColumn]:
    return sorted(_COLUMNS.values(), key=lambda c: (c.order, c.key))


def tabs_for(user: Any, application: Application) -> list[Tab]:
    visible = [t for t in _TABS.values() if permissions.has_perm(user, t.permission, application)]
    return sorted(visible, key=lambda t: (t.order, t.label))


def enrollment_sections_for(user: Any, application: Application) -> list[EnrollmentSection]:
    visible = [
        s for s in _SECTIONS.values() if permissions.has_perm(user, s.permission, application)
    ]
    return sorted(visible, key=lambda s: (s.order, s.key))
