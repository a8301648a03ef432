"""Query parameters that do not mean anything are refused with a field error, never
silently read as the default."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", ["0", "501", "-1", "ten", "", "1.5"])
def test_a_page_size_outside_1_to_500_is_a_field_error(api: Any, world: Any, value: str) -> None:
    answer = api("admin").get("/api/v1/applications/", {"page_size": value})
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["page_size"]


def test_a_page_size_in_range_sets_the_page(api: Any, world: Any) -> None:
    answer = api("admin").get("/api/v1/events/", {"page_size": "1"})
    assert answer.status_code == 200 and len(answer.json()["results"]) == 1


@pytest.mark.parametrize("name", ["since", "until"])
def test_an_empty_audit_date_filter_is_refused_not_ignored(api: Any, world: Any, name: str) -> None:
    answer = api("admin").get("/api/v1/events/", {name: ""})
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == [name]
