"""One page of a list endpoint, and the iterator that follows `starting_after` through all of them; a stream's
page, which follows the cursor its answer gives (`next`) instead."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from tollgate_client._objects import TollgateObject

T = TypeVar("T", bound=TollgateObject)


class Page(Generic[T]):
    """`{"object": "list", "data": [...], "has_more": bool}`, typed.

    Iterating a page (or `len()`) covers this page only; `auto_paging_iter()` goes on through the following
    pages, one request each, as the loop needs them.
    """

    def __init__(
        self,
        *,
        data: list[T],
        has_more: bool,
        raw: dict[str, Any],
        fetch: Callable[[str], Page[T]],
    ) -> None:
        self.data = data
        self.has_more = has_more
        self.raw = raw
        self._fetch = fetch

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"<Page of {len(self.data)} has_more={self.has_more}>"

    def next_page(self) -> Page[T] | None:
        """The page after this one, or None when this is the last."""
        if not self.has_more or not self.data:
            return None
        return self._fetch(str(self.data[-1].raw["id"]))

    def auto_paging_iter(self) -> Iterator[T]:
        """Every object from this page on, fetching the next page (same filters and `limit`) when needed."""
        page: Page[T] | None = self
        while page is not None:
            yield from page.data
            page = page.next_page()


class StreamPage(Page[T]):
    """A page of a stream (`journal.entries.list`): oldest first, each page after the opaque cursor the previous
    one answered. `next` is where this page ends: pass it as `after`, now for the next page (`next_page()` and
    `auto_paging_iter()` do), or later for what was added since — keep it when `has_more` is false. None only while
    the stream has served nothing."""

    def __init__(
        self,
        *,
        data: list[T],
        has_more: bool,
        raw: dict[str, Any],
        fetch: Callable[[str], StreamPage[T]],
        next: str | None,
    ) -> None:
        super().__init__(data=data, has_more=has_more, raw=raw, fetch=fetch)
        self._fetch_after = fetch
        self.next = next

    def __repr__(self) -> str:
        return f"<StreamPage of {len(self.data)} has_more={self.has_more}>"

    def next_page(self) -> StreamPage[T] | None:
        if not self.has_more or self.next is None:
            return None
        return self._fetch_after(self.next)
