"""Structured event filters: which fields can be filtered, and the SQL they become."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = ["FILTER_COLUMNS", "EventQuery", "Sort", "SqlFragment", "order_clause", "where_clause"]

#: API filter name → indexed column. Every field a filter makes sense for (DESIGN §2);
#: free text, ``old``/``new`` and ``metadata`` are the search language's job.
FILTER_COLUMNS: Final[Mapping[str, str]] = {
    "action": "action",
    "category": "category",
    "outcome": "outcome",
    "actor.id": "actor_id",
    "actor.email": "actor_email",
    "actor.type": "actor_type",
    "target.id": "target_id",
    "target.type": "target_type",
    "source.ip": "source_ip",
    "client_id": "client_id",
    "session_id": "session_id",
    "request_id": "request_id",
    "trace_id": "trace_id",
}


class Sort(enum.Enum):
    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True, slots=True)
class SqlFragment:
    sql: str
    params: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class EventQuery:
    """One page request over a tenant's events, ordered by ``(timestamp, id)``.

    Attributes:
        filters: API filter name → accepted values (any of them matches).
        start: inclusive lower bound on ``timestamp`` (fixed-width RFC 3339), or None.
        end: exclusive upper bound on ``timestamp``, or None.
        after: keyset position ``(timestamp, id)`` the page continues from, or None.
        max_seq: the newest ``seq`` a paged walk may see, fixed on its first page so that
            events arriving mid-walk never shift its pages.
        after_seq: only events with a larger ``seq`` (live streams resume from here).
        by_seq: order by ``seq`` (log order) instead of ``(timestamp, id)``; ``after`` is
            then ignored.
        search: a compiled search-language condition (``trailkeep.query.compile``) in the
            store's dialect, ANDed with the rest.
    """

    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    start: str | None = None
    end: str | None = None
    sort: Sort = Sort.DESC
    limit: int = 50
    after: tuple[str, str] | None = None
    max_seq: int | None = None
    after_seq: int | None = None
    by_seq: bool = False
    search: SqlFragment | None = None


def where_clause(tenant_id: str, query: EventQuery) -> SqlFragment:
    """The WHERE clause (without the keyword) for a query; every value is a bound parameter.

    Uses ``?`` placeholders; backends with another paramstyle translate them.
    """
    parts = ["tenant_id = ?"]
    params: list[object] = [tenant_id]
    for name, values in sorted(query.filters.items()):
        column = FILTER_COLUMNS[name]
        if len(values) == 1:
            parts.append(f"{column} = ?")
        else:
            parts.append(f"{column} IN ({', '.join('?' * len(values))})")
        params.extend(values)
    if query.start is not None:
        parts.append("ts >= ?")
        params.append(query.start)
    if query.end is not None:
        parts.append("ts < ?")
        params.append(query.end)
    if query.after is not None and not query.by_seq:
        parts.append("(ts, id) < (?, ?)" if query.sort is Sort.DESC else "(ts, id) > (?, ?)")
        params.extend(query.after)
    if query.max_seq is not None:
        parts.append("seq <= ?")
        params.append(query.max_seq)
    if query.after_seq is not None:
        parts.append("seq > ?")
        params.append(query.after_seq)
    if query.search is not None:
        parts.append(f"({query.search.sql})")
        params.extend(query.search.params)
    return SqlFragment(" AND ".join(parts), tuple(params))


def order_clause(query: EventQuery) -> str:
    """``ORDER BY`` for a query: log order, or time order with ``id`` breaking ties."""
    direction = "DESC" if query.sort is Sort.DESC else "ASC"
    if query.by_seq:
        return f"ORDER BY seq {direction}"
    return f"ORDER BY ts {direction}, id {direction}"
