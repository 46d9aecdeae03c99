"""Facet counts as SQL: distinct values with counts per dimension, and a time histogram."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from trailkeep.query.filters import EventQuery, SqlFragment, where_clause

__all__ = [
    "DIMENSIONS",
    "FacetCounts",
    "bucket_width",
    "count_rows",
    "dimension_sql",
    "histogram_sql",
    "scan_sql",
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


# -- rollups ----------------------------------------------------------------------------------
#
# Counting a million rows per request is too slow, so the writer keeps running counts in
# ``facet_counts``: per dimension, value and *day* and *hour* (the period's length tells which),
# and per hour for the total (dimension ``_hour``, value ""). A facet request whose selection
# is only a time range reads whole days, then whole hours, from the rollups and counts just the
# partial hours at its edges from the events.

#: Dimension name of the per-hour totals in ``facet_counts``.
HOUR_TOTAL: Final = "_hour"
#: Columns of a rollup row.
ROLLUP_COLUMNS: Final = ("tenant_id", "dim", "period", "value", "n")


def rollup_counts(
    tenant_id: str, rows: list[dict[str, str | None]]
) -> list[tuple[str, str, str, str, int]]:
    """Rollup increments for new events, given each one's ``ts`` and dimension columns."""
    counts: dict[tuple[str, str, str], int] = {}
    for row in rows:
        ts = row["ts"]
        assert ts is not None
        day, hour = ts[:10], ts[:13]
        key = (HOUR_TOTAL, hour, "")
        counts[key] = counts.get(key, 0) + 1
        for name, column in DIMENSIONS.items():
            value = row[column]
            if value is not None:
                for period in (day, hour):
                    key = (name, period, value)
                    counts[key] = counts.get(key, 0) + 1
    return [(tenant_id, dim, period, value, n) for (dim, period, value), n in counts.items()]


def rollup_only(query: EventQuery) -> bool:
    """Whether a query is a plain time range, which the rollups can answer."""
    return not (
        query.filters
        or query.search is not None
        or query.after is not None
        or query.max_seq is not None
        or query.after_seq is not None
    )


def _next(prefix: str) -> str:
    """The period after a day (``YYYY-MM-DD``) or an hour (``YYYY-MM-DDTHH``) prefix."""
    if len(prefix) == 10:
        moment = datetime.strptime(prefix, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)
        return moment.strftime("%Y-%m-%d")
    moment = datetime.strptime(prefix, "%Y-%m-%dT%H").replace(tzinfo=UTC) + timedelta(hours=1)
    return moment.strftime("%Y-%m-%dT%H")


def _start_of(prefix: str) -> str:
    """The fixed-width timestamp at which a day or hour prefix begins."""
    return prefix + ("T00:00:00.000000Z" if len(prefix) == 10 else ":00:00.000000Z")


@dataclass(frozen=True, slots=True)
class RollupPlan:
    """Whole periods ``[first, last)`` from the rollups (None: unbounded), and the partial
    edges as time ranges counted from the events."""

    first: str | None
    last: str | None
    edges: list[tuple[str | None, str | None]]


def plan(start: str | None, end: str | None, width: int) -> RollupPlan | None:
    """Split ``[start, end)`` into whole periods of ``width`` characters and partial edges.

    Returns None when the range holds no whole period (count it from the events).
    """
    first = None if start is None else start[:width]
    if start is not None and first is not None and start != _start_of(first):
        first = _next(first)
    last = None if end is None else end[:width]
    if first is not None and last is not None and first >= last:
        return None
    edges: list[tuple[str | None, str | None]] = []
    if start is not None and first is not None and start < _start_of(first):
        edges.append((start, _start_of(first)))
    if end is not None and last is not None and _start_of(last) < end:
        edges.append((_start_of(last), end))
    return RollupPlan(first, last, edges)


def rollup_sql(
    tenant_id: str, dim: str, first: str | None, last: str | None, width: int
) -> SqlFragment:
    """Summed rollup counts of one dimension over whole periods ``[first, last)`` of
    ``width`` characters (10: days, 13: hours)."""
    sql = (
        "SELECT value, sum(n) FROM facet_counts"
        " WHERE tenant_id = ? AND dim = ? AND length(period) = ?"
    )
    params: list[object] = [tenant_id, dim, width]
    if first is not None:
        sql += " AND period >= ?"
        params.append(first)
    if last is not None:
        sql += " AND period < ?"
        params.append(last)
    group = "period" if dim == HOUR_TOTAL else "value"
    if dim == HOUR_TOTAL:
        sql = sql.replace("SELECT value,", "SELECT period,")
    return SqlFragment(sql + f" GROUP BY {group} HAVING sum(n) > 0", tuple(params))


def scan_sql(tenant_id: str, query: EventQuery) -> SqlFragment:
    """Minute and dimension columns of every selected event, for one-pass counting."""
    where = where_clause(tenant_id, query)
    columns = ", ".join(DIMENSIONS.values())
    return SqlFragment(
        f"SELECT substr(ts, 1, 16), {columns} FROM events WHERE {where.sql}",  # noqa: S608
        where.params,
    )


def count_rows(rows: Iterable[Sequence[str | None]], top: int) -> FacetCounts:
    """Facets from ``scan_sql`` rows: one pass over the selection instead of one per facet."""
    names = list(DIMENSIONS)
    counters: list[dict[str, int]] = [{} for _ in names]
    minutes: dict[str, int] = {}
    total = 0
    for row in rows:
        total += 1
        minute = str(row[0])
        minutes[minute] = minutes.get(minute, 0) + 1
        for counter, value in zip(counters, row[1:], strict=True):
            if value is not None:
                counter[value] = counter.get(value, 0) + 1
    if not total:
        return FacetCounts(0, {name: [] for name in names})
    bucket = bucket_width(min(minutes) + ":00.000000Z", max(minutes) + ":59.999999Z")
    width = _BUCKETS[bucket]
    histogram: dict[str, int] = {}
    for minute, n in minutes.items():
        histogram[minute[:width]] = histogram.get(minute[:width], 0) + n
    dimensions = {
        name: sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        for name, counter in zip(names, counters, strict=True)
    }
    return FacetCounts(total, dimensions, bucket, sorted(histogram.items()))
