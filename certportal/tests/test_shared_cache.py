"""One answer to "is Redis on?": certportal.cache.is_shared()."""

from __future__ import annotations

import ast
from pathlib import Path

from certportal.cache import is_shared

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["certportal", "applications", "profiles", "issuance", "approvals", "alerts", "syncs"]
ALLOWED = {Path("certportal/settings.py"), Path("certportal/cache.py")}


def _reads_redis_url(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "REDIS_URL"
        and isinstance(node.value, ast.Name)
        and node.value.id == "settings"
    ]


def test_only_the_cache_module_asks_whether_redis_is_on():
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if "tests" in relative.parts or "migrations" in relative.parts:
                continue
            if relative not in ALLOWED and (lines := _reads_redis_url(path)):
                offenders.append(f"{relative}:{lines}")
    assert offenders == []


def test_is_shared_follows_the_redis_setting(settings):
    settings.REDIS_URL = ""
    assert is_shared() is False
    settings.REDIS_URL = "redis://127.0.0.1:6379/13"
    assert is_shared() is True


def _sources() -> list[tuple[Path, str]]:
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if "tests" not in relative.parts and "migrations" not in relative.parts:
                found.append((relative, path.read_text()))
    return found


def test_only_the_generation_module_touches_its_cache_key():
    offenders = [
        str(path)
        for path, text in _sources()
        if path != Path("certportal/generation.py")
        and ("generation.KEY" in text or "certportal:config-generation" in text)
    ]
    assert offenders == []


def test_framework_internals_for_speed_stay_in_certportal_db():
    """docs/performance.md lists what certportal/db uses; nothing else reaches for it."""
    internals = (
        "from django.db.models.sql import",
        "_prepare_related_fields_for_save",
        "get_related_populators",
        "psycopg._queries",
        "from psycopg import _",
        "._cache.",
    )
    offenders = [
        f"{path}: {name}"
        for path, text in _sources()
        if path.parts[:2] != ("certportal", "db")
        for name in internals
        if name in text
    ]
    assert offenders == []
