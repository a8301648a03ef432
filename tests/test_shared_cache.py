"""One answer to "is Redis on?": certportal.cache.is_shared()."""

from __future__ import annotations

import ast
from pathlib import Path

from certportal.cache import is_shared

ROOT = Path(__file__).resolve().parent.parent
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
