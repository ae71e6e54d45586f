"""One page of a listing: its items, where it stands, and how many there are in all (None when
counting would cost more than the listing is worth)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


def offset(page: int, per_page: int) -> int:
    """How many items come before the page (pages count from 1)."""
    return (page - 1) * per_page


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of items, as the API's page_json and the pages' _pager.html read it."""

    items: Sequence[T]
    page: int
    per_page: int
    has_next: bool
    total: int | None

    @classmethod
    def fetched(cls, rows: Sequence[T], page: int, per_page: int, total: int | None) -> Page[T]:
        """From rows read with limit(per_page + 1): one more than a page means another follows."""
        return cls(list(rows[:per_page]), page, per_page, len(rows) > per_page, total)

    @classmethod
    def of(cls, everything: Sequence[T], page: int, per_page: int) -> Page[T]:
        """The page-th slice of a list already in memory."""
        first = offset(page, per_page)
        return cls(
            everything[first : first + per_page],
            page,
            per_page,
            first + per_page < len(everything),
            len(everything),
        )
