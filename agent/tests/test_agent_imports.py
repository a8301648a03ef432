"""The agent stands alone: no Django, none of the portal's packages."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "certportal_agent"
PORTAL = {"django", "rest_framework", "certportal", "issuance", "pki", "profiles"}
PORTAL |= {"applications", "approvals", "syncs", "alerts"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_module_of_the_agent_imports_the_portal() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 8
    for module in modules:
        assert imported_roots(module) & PORTAL == set(), module.name
