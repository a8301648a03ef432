"""Pages of a large list without counting all of it.

Django's ``Paginator`` counts the whole queryset (``SELECT COUNT(*)``) to number its
pages: at a million certificates that count alone takes longer than the rest of the
page. ``CappedPaginator`` fetches one row more than a page to know whether a next page
exists, and counts at most ``cap`` + 1 rows: the page says "more than 1,000" past that,
and numbers its pages without a last one. Templates read it like a Django page
(``number``, ``has_next``, ``has_previous``, ``has_other_pages``, ``paginator.count``);
``paginator.count_is_capped`` says the count stopped at the cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from django.db.models import QuerySet

COUNT_CAP = 1_000
# A page number this high is an edited URL: OFFSET past the last row, answered with the
# last page (and kept below the database's bigint OFFSET).
MAX_PAGE = 1_000_000


class CappedPaginator:
    """Pages of ``queryset`` (ordered), ``per_page`` rows each, counted up to ``cap``."""

    def __init__(
        self,
        queryset: QuerySet[Any],
        per_page: int,
        *,
        cap: int | None = None,
        counted: bool = True,
    ):
        """``counted=False`` runs no count query at all (a substring search, whose count
        would repeat the whole search): a full page then says "more than" its last row."""
        self.queryset, self.per_page, self.counted = queryset, per_page, counted
        self.cap = COUNT_CAP if cap is None else cap
        self._exact = False

    @cached_property
    def count(self) -> int:
        """The number of rows, or ``cap`` + 1 when there are more than ``cap``.

        Any cap + 1 rows will do: no ORDER BY and no joined columns, so the database
        counts from whichever index answers the filter."""
        return self.queryset.order_by().values("pk")[: self.cap + 1].count()

    @property
    def count_is_capped(self) -> bool:
        """Whether the count stopped at the cap (more rows exist than it says)."""
        return not self._exact and self.count > self.cap

    @property
    def num_pages(self) -> int | None:
        """The number of pages, None when the count is capped (no last page known)."""
        if self.count_is_capped:
            return None
        return max(1, -(-self.count // self.per_page))

    def get_page(self, number: Any) -> CappedPage:
        """The page, as Django's ``get_page``: a bad number is page 1; a page past the
        end is the last page."""
        try:
            number = int(number)
        except (TypeError, ValueError):
            number = 1
        number = min(max(number, 1), MAX_PAGE)
        page = self._page(number)
        if not page.object_list and number > 1:
            return self._page(self._last_page())
        return page

    def _page(self, number: int) -> CappedPage:
        start = (number - 1) * self.per_page
        rows = list(self.queryset[start : start + self.per_page + 1])
        more = len(rows) > self.per_page
        if not more and (rows or number == 1):  # the last page: the total is known
            self.__dict__["count"], self._exact = start + len(rows), True
        elif more and not self.counted:
            self.cap = start + self.per_page
            self.__dict__["count"] = self.cap + 1
        return CappedPage(rows[: self.per_page], number, more, self)

    def _last_page(self) -> int:
        """Only for a page past the end: the full count (a URL edited by hand)."""
        return max(1, -(-self.queryset.count() // self.per_page))


class CappedPage:
    """One page: its rows, its number, and whether another follows."""

    def __init__(
        self, object_list: Sequence[Any], number: int, more: bool, paginator: CappedPaginator
    ):
        self.object_list = object_list
        self.number = number
        self._more = more
        self.paginator = paginator

    def __len__(self) -> int:
        return len(self.object_list)

    def has_next(self) -> bool:
        return self._more

    def has_previous(self) -> bool:
        return self.number > 1

    def has_other_pages(self) -> bool:
        return self.has_next() or self.has_previous()

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1
