"""CappedPaginator: pages without counting the whole list."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from certportal import paging
from certportal.paging import CappedPaginator

pytestmark = pytest.mark.django_db


@pytest.fixture
def users() -> Any:
    model = get_user_model()
    model.objects.bulk_create([model(username=f"u{i:02d}") for i in range(11)])
    return model.objects.order_by("username")


def _names(page: Any) -> list[str]:
    return [u.username for u in page.object_list]


def test_pages_know_next_and_previous_without_a_total(users: Any) -> None:
    paginator = CappedPaginator(users, 4, cap=5)
    first = paginator.get_page(1)
    assert _names(first) == ["u00", "u01", "u02", "u03"]
    assert first.has_next() and not first.has_previous() and first.has_other_pages()
    assert first.next_page_number() == 2
    assert paginator.count_is_capped and paginator.count == 6 and paginator.num_pages is None
    middle = paginator.get_page("2")
    assert _names(middle) == ["u04", "u05", "u06", "u07"]
    assert middle.has_next() and middle.has_previous() and middle.previous_page_number() == 1
    last = paginator.get_page(3)
    assert _names(last) == ["u08", "u09", "u10"]
    assert not last.has_next() and last.has_previous()


def test_the_count_stops_at_the_cap(users: Any) -> None:
    with CaptureQueriesContext(connection) as queries:
        count = CappedPaginator(users, 4, cap=5).count
    assert count == 6
    [sql] = [q["sql"] for q in queries.captured_queries]
    assert "LIMIT 6" in sql and "ORDER BY" not in sql  # any 6 rows: no sort to count
    uncapped = CappedPaginator(users, 4, cap=100)
    assert uncapped.count == 11 and not uncapped.count_is_capped and uncapped.num_pages == 3


def test_a_single_page_is_one_query(users: Any) -> None:
    paginator = CappedPaginator(users.filter(username__lt="u03"), 25)
    with CaptureQueriesContext(connection) as queries:
        page = paginator.get_page(1)
        assert paginator.count == 3 and not paginator.count_is_capped
    assert len(queries.captured_queries) == 1
    assert not page.has_other_pages() and paginator.num_pages == 1


@pytest.mark.parametrize("number", ["x", "", None, "-3", "0"])
def test_a_bad_page_number_is_the_first_page(users: Any, number: Any) -> None:
    page = CappedPaginator(users, 4, cap=5).get_page(number)
    assert page.number == 1 and _names(page)[0] == "u00"


@pytest.mark.parametrize("number", ["4", "999", str(10**30)])
def test_a_page_past_the_end_is_the_last_page(users: Any, number: str) -> None:
    page = CappedPaginator(users, 4, cap=5).get_page(number)
    assert page.number == 3 and _names(page) == ["u08", "u09", "u10"]


def test_the_default_cap_is_read_when_the_paginator_is_made(
    users: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "COUNT_CAP", 7)
    assert CappedPaginator(users, 4).cap == 7


def test_uncounted_pages_say_more_than_their_last_row_without_a_count_query(
    users: Any,
) -> None:
    paginator = CappedPaginator(users, 4, counted=False)
    with CaptureQueriesContext(connection) as queries:
        page = paginator.get_page(2)
        assert paginator.count_is_capped and paginator.cap == 8 and page.has_next()
    assert len(queries.captured_queries) == 1  # the page's rows, nothing else
    last = CappedPaginator(users, 4, counted=False)
    last.get_page(3)
    assert last.count == 11 and not last.count_is_capped


def test_an_empty_first_page_counts_nothing(users: Any) -> None:
    paginator = CappedPaginator(users.filter(username="nobody"), 4)
    with CaptureQueriesContext(connection) as queries:
        page = paginator.get_page(1)
        assert paginator.count == 0 and not paginator.count_is_capped
    assert len(queries.captured_queries) == 1 and not page.object_list
