"""The code that reaches into Django's, psycopg's or redis-py's internals, and nothing else.

Each piece here buys a measured difference over the plain framework path, has a setting
that turns it off, and a test that holds it to the plain path's results.
docs/performance.md lists every private name each piece uses, the figures that keep it,
and the versions below, which it was checked against: a start-up check warns when the
installed versions differ, so an upgrade re-runs the tests and benchmarks first.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.core import checks

# Distribution name -> the major.minor release the private uses were checked against.
CHECKED_AGAINST = {"django": "5.2", "psycopg": "3.3", "redis": "8.1", "django-q2": "1.11"}


def check_versions(**kwargs: Any) -> list[checks.CheckMessage]:
    """A warning for each dependency whose installed release was not checked."""
    found: list[checks.CheckMessage] = []
    for name, checked in CHECKED_AGAINST.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue
        if ".".join(installed.split(".")[:2]) != checked:
            found.append(
                checks.Warning(
                    f"{name} {installed} is installed; certportal.db was checked against "
                    f"{checked}.x (docs/performance.md lists what to re-check)",
                    id="certportal.W001",
                )
            )
    return found
