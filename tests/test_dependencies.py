"""Dependencies between apps run one way (docs/architecture.md, "Layers").

The graph is read from the source with ``ast``: every import counts, at module level or
inside a function, except those under ``if TYPE_CHECKING:`` (annotations only) and those
in tests and migrations. A unit may import only units of a lower layer, so no two apps
import each other and the order in which modules load can never matter. Extending a
lower layer from a higher one goes through a registry filled at start-up (the pipeline's
gates, outbox consumers, Application tabs and sections), never through an import.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. Units of one layer are peers and import none of each other.
LAYERS: list[set[str]] = [
    {"pki"},  # X.509 on cryptography, no Django
    {"certportal"},  # infrastructure: settings helpers, secrets, events, permissions, outbox
    {"certportal.api"},  # the REST API's frame: tokens, service accounts, errors, scoping
    {"profiles"},  # CAs and certificate profiles
    {"applications"},  # Applications, members, audit log, the tab registry
    {"issuance"},  # the pipeline, inventory, revocation and its fronts (issuance.acme, ...)
    {"approvals", "alerts", "syncs"},  # features on top of issuance
    {"site"},  # the root URLconfs, the home page, settings, wsgi/asgi
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}

# The modules that compose every app: they sit above all of them.
SITE_MODULES = {
    "certportal.urls",
    "certportal.api_urls",
    "certportal.views",
    "certportal.settings",
    "certportal.wsgi",
    "certportal.asgi",
}

# Import edges allowed against the layering, each with its reason; none today.
EXCEPTIONS: set[tuple[str, str]] = set()


def unit_of(module: str) -> str | None:
    """The unit a dotted module name belongs to, or None outside the apps."""
    if module in SITE_MODULES:
        return "site"
    if module == "certportal.api" or module.startswith("certportal.api."):
        return "certportal.api"
    top = module.split(".")[0]
    return top if top in RANK else None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _type_checking_only(tree: ast.Module) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                hidden.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return hidden


def _imported(node: ast.Import | ast.ImportFrom, module: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module.split(".")[: -node.level] if node.level else []
        base = ".".join([*package, *([base] if base else [])])
    for alias in node.names:
        # `from certportal import api` imports the module certportal.api.
        child = f"{base}.{alias.name}"
        yield child if _is_module(child) else base


def _sources() -> Iterator[Path]:
    for unit in sorted({unit.split(".")[0] for unit in RANK if unit != "site"}):
        for path in sorted((ROOT / unit).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "tests" not in parts and "migrations" not in parts:
                yield path


def import_edges() -> set[tuple[str, str, str]]:
    """(importer, imported, where) for every import that crosses from one unit to another."""
    edges = set()
    for path in _sources():
        module = _module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        hidden = _type_checking_only(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in hidden:
                continue
            for target in _imported(node, module):
                if unit_of(target) not in (None, unit_of(module)):
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    edges.add((module, target, where))
    return edges


def test_every_import_between_apps_points_to_a_lower_layer() -> None:
    upward = sorted(
        f"{where}: {importer} -> {imported}"
        for importer, imported, where in import_edges()
        if RANK[unit_of(imported)] >= RANK[unit_of(importer)]
        and (importer, imported) not in EXCEPTIONS
    )
    assert upward == []


def test_every_exception_is_still_needed() -> None:
    used = {(importer, imported) for importer, imported, _ in import_edges()}
    assert EXCEPTIONS - used == set(), "remove the exceptions no longer imported"


def test_the_graph_sees_imports_inside_functions_and_skips_type_checking_ones() -> None:
    edges = {(importer, imported) for importer, imported, _ in import_edges()}
    # approvals.services imports the pipeline inside a function; issuance.services names
    # approval types only for annotations.
    assert ("approvals.services", "issuance.services") in edges
    assert not any(
        importer.startswith("issuance.services") and unit_of(imported) == "approvals"
        for importer, imported in edges
    )
    assert unit_of("certportal.api.models") == "certportal.api"
    assert unit_of("certportal.urls") == "site"


# A services module, or a services package (its ``__init__`` re-exports the submodules).
SERVICES = sorted(
    _module_name(path)
    for path in _sources()
    if (path.name == "services.py" or path.parent.name == "services") and "tests" not in path.parts
)


@pytest.mark.parametrize("module", SERVICES)
def test_each_services_module_imports_alone(module: str) -> None:
    """In a fresh interpreter, after Django is set up, the module imports by itself: no
    import cycle depends on some other module having been loaded first."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "certportal.settings"}
    env.setdefault("CERTPORTAL_SECRET_KEY", "dependency-test")
    code = f"import django; django.setup(); import {module}"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
