"""Event names are a contract: every recorded event type is an EventType member."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from applications.models import Application, AuditEvent
from certportal.event_types import EventType
from certportal.events import SYSTEM, Event, event_rows, record
from certportal.models import OutboxEvent

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {".venv", "data", "artifacts", "build", "migrations", "tests", "node_modules"}
# Calls whose first argument (or action=) names the event type.
RECORDERS = {"record", "Event"}


def code_files() -> Iterator[Path]:
    """The project's non-test Python files, but for the EventType definition itself."""
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if any(p in SKIPPED_DIRS or p.startswith(".") for p in parts[:-1]):
            continue
        if path.name.startswith("test_") or path.name == "conftest.py":
            continue
        if path == ROOT / "certportal" / "event_types.py":
            continue
        yield path


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def hand_typed_event_types(source: str) -> list[str]:
    """Where source names an event type with a string instead of an EventType member: a
    literal or f-string passed as the type to record()/Event(), or any string literal that
    equals an event type's value (a dict key, a comparison)."""
    found = []
    values = set(EventType.values)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _called_name(node) in RECORDERS:
            named = node.args[:1] + [k.value for k in node.keywords if k.arg == "action"]
            for arg in named:
                if any(isinstance(n, ast.Constant | ast.JoinedStr) for n in ast.walk(arg)):
                    found.append(f"line {node.lineno}: {ast.unparse(arg)}")
        elif isinstance(node, ast.Constant) and node.value in values:
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_the_scanner_finds_literals_and_f_strings() -> None:
    source = (
        'record("certificate.isued", actor=a)\n'
        "Event(f\"request.{'x' if ok else 'y'}\", a)\n"
        'record(action="a" if ok else EventType.REQUEST_FAILED, actor=a)\n'
        'EVENTS = {"certificate.revoked": 1}\n'
        "record(EventType.CERTIFICATE_ISSUED, actor=a)\n"
        "record(action, actor=a)\n"
    )
    assert [f.split(":")[0] for f in hand_typed_event_types(source)] == [
        "line 1",
        "line 2",
        "line 3",
        "line 4",
    ]


def test_no_event_type_is_typed_by_hand_in_code() -> None:
    found = {
        str(path.relative_to(ROOT)): hits
        for path in code_files()
        if (hits := hand_typed_event_types(path.read_text()))
    }
    assert found == {}, "use certportal.event_types.EventType members"


def test_every_event_type_is_used_in_code() -> None:
    used = set()
    for path in code_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "EventType"
            ):
                used.add(node.attr)
    assert {m.name for m in EventType} - used == set()


def test_event_type_values_are_unique_and_dotted() -> None:
    assert len(set(EventType.values)) == len(EventType)
    assert all(v.count(".") == 1 and v == v.lower() for v in EventType.values)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["certificate.isued", "certificate", ""])
def test_record_refuses_a_name_that_is_not_an_event_type(
    name: str, application: Application
) -> None:
    before = AuditEvent.objects.count(), OutboxEvent.objects.count()
    with pytest.raises(ValueError, match="is not an event type"):
        record(name, actor=SYSTEM, application=application)  # type: ignore[arg-type]
    assert (AuditEvent.objects.count(), OutboxEvent.objects.count()) == before


def test_event_rows_refuses_a_name_that_is_not_an_event_type() -> None:
    events: list[Any] = [
        Event(EventType.REQUEST_FAILED, SYSTEM),
        Event("request.faild", SYSTEM),  # type: ignore[arg-type]
    ]
    with pytest.raises(ValueError, match=r"'request\.faild' is not an event type"):
        event_rows(events)


@pytest.mark.django_db
def test_a_member_is_stored_as_its_unchanged_value(application: Application) -> None:
    record(EventType.CERTIFICATE_IMPORTED, actor=SYSTEM, application=application)
    audit = AuditEvent.objects.get(action=EventType.CERTIFICATE_IMPORTED)
    outbox = OutboxEvent.objects.get(event_type=EventType.CERTIFICATE_IMPORTED)
    assert (audit.action, outbox.event_type) == ("certificate.imported", "certificate.imported")
    assert type(audit.action) is str
