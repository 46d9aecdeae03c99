"""Reads the vendor dialects need beyond one native page: offset windows, totals, and
conditions on fields that have no indexed column.

A dialect pushes every condition it can down to the structured filters of
:class:`~trailkeep.query.filters.EventQuery` (``filters``, ``start``, ``end``), and states the
rest as a predicate over the stored event (``DialectQuery.where``: a ``metadata`` key, a value
the dialect derives, free text). :class:`Scan` walks the matching events page by page through
:class:`~trailkeep.service.events.EventService` (so it never sees storage) and applies the
predicate in Python, examining at most ``budget`` events per request.

TODO(dialects): the search language (``trailkeep.query``) now compiles to SQL; conditions that
are plain ``field:value`` terms (metadata keys) can move from ``DialectQuery.where`` into a
compiled query, and offsets and totals into a storage count, so fewer requests need the scan
budget. Vendor semantics the language lacks (substrings, derived fields) stay predicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from trailkeep.model.event import StoredEvent
from trailkeep.query.filters import Sort
from trailkeep.service.events import EventService

__all__ = ["PAGE_SIZE", "SCAN_BUDGET", "DialectQuery", "DialectReader", "Scan", "Window"]

#: Most events one request may examine (pushed-down filters do not count against it: only
#: rows they let through do).
SCAN_BUDGET: Final = 50_000
#: Native page size of a scan: the largest the native list serves.
PAGE_SIZE: Final = 1000


@dataclass(frozen=True, slots=True)
class DialectQuery:
    """Which events a dialect request selects, in which order.

    Attributes:
        filters: native filter name (``FILTER_COLUMNS``) → accepted values, pushed down.
        start: inclusive lower bound on ``timestamp`` (fixed-width RFC 3339), or None.
        end: exclusive upper bound on ``timestamp``, or None.
        sort: time order of the walk.
        where: the conditions no column can answer, or None when every one was pushed down.
    """

    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    start: str | None = None
    end: str | None = None
    sort: Sort = Sort.DESC
    where: Callable[[StoredEvent], bool] | None = None

    @property
    def empty(self) -> bool:
        """True when the bounds exclude every event (``start`` at or after ``end``)."""
        return self.start is not None and self.end is not None and self.start >= self.end


@dataclass(frozen=True, slots=True)
class Window:
    """One page of matches.

    Attributes:
        events: the matches at ``[offset, offset + limit)``.
        total: how many matches the scan saw; exact unless ``truncated``.
        truncated: the scan stopped at its budget, so later matches (and ``total``) are
            incomplete.
    """

    events: list[StoredEvent]
    total: int
    truncated: bool


class Scan:
    """The events of a selection, in its order, stopping after ``budget`` examined events.

    Iterate once; afterwards ``truncated`` tells whether the budget cut the walk short.
    """

    def __init__(
        self,
        events: EventService,
        tenant_id: str,
        selection: DialectQuery,
        *,
        budget: int = SCAN_BUDGET,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._events = events
        self._tenant_id = tenant_id
        self._selection = selection
        self._budget = budget
        self._page_size = page_size
        self.truncated = False

    def __iter__(self) -> Iterator[StoredEvent]:
        sel = self._selection
        if sel.empty:
            return
        examined = 0
        cursor: str | None = None
        while True:
            page = self._events.list(
                self._tenant_id,
                filters=sel.filters,
                start=sel.start,
                end=sel.end,
                sort=sel.sort,
                limit=min(self._page_size, self._budget - examined),
                cursor=cursor,
            )
            for event in page.events:
                if sel.where is None or sel.where(event):
                    yield event
            examined += len(page.events)
            if page.next_cursor is None:
                return
            if examined >= self._budget:
                self.truncated = True
                return
            cursor = page.next_cursor


class DialectReader:
    """Offset windows and totals over one tenant's events, for dialects that page by offset.

    Args:
        events: the event service the reads go through.
        budget: most events one request may examine (see :data:`SCAN_BUDGET`).
    """

    def __init__(self, events: EventService, *, budget: int = SCAN_BUDGET) -> None:
        self._events = events
        self._budget = budget

    def scan(self, tenant_id: str, selection: DialectQuery) -> Scan:
        """Every match, in order, within the budget (for sorting or folding in memory)."""
        return Scan(self._events, tenant_id, selection, budget=self._budget)

    def window(
        self,
        tenant_id: str,
        selection: DialectQuery,
        *,
        offset: int,
        limit: int,
        count_total: bool = False,
    ) -> Window:
        """The matches at ``[offset, offset + limit)``.

        Args:
            count_total: keep walking past the window to count every match (for dialects
                that report a total); otherwise stop at the window's end.
        """
        wanted = offset + limit
        # Without a predicate every row is a match, so a short window needs short pages.
        page_size = PAGE_SIZE
        if selection.where is None and not count_total:
            page_size = max(1, min(PAGE_SIZE, wanted + 1))
        scan = Scan(self._events, tenant_id, selection, budget=self._budget, page_size=page_size)
        found: list[StoredEvent] = []
        total = 0
        for event in scan:
            if offset <= total < wanted:
                found.append(event)
            total += 1
            if total >= wanted and not count_total:
                break
        return Window(found, total, scan.truncated)
