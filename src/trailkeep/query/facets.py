"""Facet counts as SQL: distinct values with counts per dimension, and a time histogram."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from trailkeep.query.filters import EventQuery, SqlFragment, where_clause

__all__ = [
    "DIMENSIONS",
    "FacetCounts",
    "bucket_width",
    "dimension_sql",
    "histogram_sql",
    "span_sql",
]

#: Facet name → column. Each is counted over the events a query selects.
DIMENSIONS: Final = {
    "category": "category",
    "action": "action",
    "outcome": "outcome",
    "target.type": "target_type",
    "actor.id": "actor_id",
}
#: Histogram bucket → characters of the fixed-width timestamp that name it.
_BUCKETS: Final = {"minute": 16, "hour": 13, "day": 10, "month": 7}


@dataclass(frozen=True, slots=True)
class FacetCounts:
    """What a viewer needs to draw filters and a chart for the current query."""

    total: int
    dimensions: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    bucket: str = "day"
    histogram: list[tuple[str, int]] = field(default_factory=list)


def bucket_width(first: str | None, last: str | None) -> str:
    """The histogram bucket for a time span, aiming at tens to a few hundred bars.

    Compares fixed-width timestamps as strings: same hour → minutes, same week-ish → hours.
    """
    if first is None or last is None:
        return "day"
    if first[:13] == last[:13] or (first[:10] == last[:10] and last[11:13] <= "02"):
        return "minute"
    if first[:8] == last[:8] and int(last[8:10]) - int(first[8:10]) <= 7:
        return "hour"
    if first[:4] == last[:4] or first[:3] == last[:3]:
        return "day"
    return "month"


def span_sql(tenant_id: str, query: EventQuery) -> SqlFragment:
    """Count, first and last timestamp of the selection."""
    where = where_clause(tenant_id, query)
    return SqlFragment(
        f"SELECT count(*), min(ts), max(ts) FROM events WHERE {where.sql}",  # noqa: S608
        where.params,
    )


def dimension_sql(tenant_id: str, query: EventQuery, name: str, top: int) -> SqlFragment:
    """The ``top`` most frequent values of one dimension (NULLs left out)."""
    column = DIMENSIONS[name]
    where = where_clause(tenant_id, query)
    return SqlFragment(
        f"SELECT {column}, count(*) AS n FROM events"  # noqa: S608 - column from DIMENSIONS
        f" WHERE {where.sql} AND {column} IS NOT NULL"
        f" GROUP BY {column} ORDER BY n DESC, {column} LIMIT ?",
        (*where.params, top),
    )


def histogram_sql(tenant_id: str, query: EventQuery, bucket: str) -> SqlFragment:
    """Counts per time bucket, oldest first; a bucket is named by its timestamp prefix."""
    width = _BUCKETS[bucket]
    where = where_clause(tenant_id, query)
    return SqlFragment(
        f"SELECT substr(ts, 1, {width}) AS b, count(*) FROM events"  # noqa: S608 - int width
        f" WHERE {where.sql} GROUP BY b ORDER BY b",
        where.params,
    )
