"""Building an ``EventQuery`` the way the service does: native filters and ``q`` as one tree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from trailkeep.query.filters import EventQuery, conjoin, filter_node
from trailkeep.service.selection import search_tree

__all__ = ["NOW", "event_query"]

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def event_query(
    filters: Mapping[str, Sequence[str]] | None = None,
    start: str | None = None,
    end: str | None = None,
    *,
    q: str | None = None,
    now: datetime = NOW,
    **rest: Any,
) -> EventQuery:
    """The query for native ``filters`` and a search ``q`` (relative times read at ``now``)."""
    where = conjoin(filter_node(filters or {}), search_tree(q, now))
    return EventQuery(where, start, end, **rest)
