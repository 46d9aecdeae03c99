"""SQLite statements shared by the writer: multi-row inserts and the facet rollups."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

from trailkeep.query.facets import (
    DIMENSIONS,
    HOUR_TOTAL,
    ROLLUP_COLUMNS,
    FacetCounts,
    bucket_width,
    count_rows,
    histogram_sql,
    plan,
    rollup_counts,
    rollup_sql,
    scan_sql,
)
from trailkeep.query.filters import EventQuery, SqlFragment
from trailkeep.storage.rows import EVENT_COLUMNS

__all__ = ["ROLLUP_AT", "add_rollups", "adjust_rollups", "facets_from_rollups", "insert_many"]

#: Most bound values in one statement (SQLite's limit is 32,766).
_MAX_VARIABLES = 30_000


@functools.cache
def _insert_sql(table: str, columns: tuple[str, ...], rows: int, suffix: str = "") -> str:
    row = "(" + ", ".join("?" * len(columns)) + ")"
    values = ", ".join([row] * rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}{suffix}"  # noqa: S608


def insert_many(
    conn: sqlite3.Connection,
    table: str,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    suffix: str = "",
) -> None:
    """Insert rows with multi-row ``INSERT`` statements rather than ``executemany``.

    ``executemany`` steps once per row, releasing and re-taking the GIL each time; while the
    event loop thread is busy, every re-take can wait a whole switch interval (a convoy).
    One statement per few hundred rows keeps the writer's GIL hand-offs rare.
    """
    per_statement = max(1, _MAX_VARIABLES // len(columns))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = _insert_sql(table, columns, len(chunk), suffix)
        conn.execute(sql, [v for r in chunk for v in r])


_ROLLUP_UPSERT = " ON CONFLICT (tenant_id, dim, period, value) DO UPDATE SET n = n + excluded.n"
#: Positions in ``event_row`` of the columns the facet rollups count.
ROLLUP_AT = {c: EVENT_COLUMNS.index(c) for c in ("ts", *DIMENSIONS.values())}


def add_rollups(
    conn: sqlite3.Connection, tenant_id: str, rows: list[dict[str, str | None]]
) -> None:
    counts = rollup_counts(tenant_id, rows)
    if counts:
        insert_many(conn, "facet_counts", ROLLUP_COLUMNS, counts, _ROLLUP_UPSERT)


def _count(conn: sqlite3.Connection, sql: SqlFragment, into: dict[str, int]) -> None:
    for key, n in conn.execute(sql.sql, sql.params):
        into[key] = into.get(key, 0) + n


def facets_from_rollups(
    conn: sqlite3.Connection, tenant_id: str, query: EventQuery, top: int
) -> FacetCounts | None:
    """Facets of a plain time range: whole days, then whole hours, from the rollups; the
    partial hours at the edges from the events, in one pass each. None when the range is too
    short to gain from rollups."""
    hours = plan(query.start, query.end, 13)
    days = plan(query.start, query.end, 10)
    if hours is None or days is None:
        return None
    edges = [
        count_rows(conn.execute(scan.sql, scan.params), 2**31)
        for scan in (scan_sql(tenant_id, EventQuery(start=s, end=e)) for s, e in hours.edges)
    ]
    per_hour: dict[str, int] = {}
    _count(conn, rollup_sql(tenant_id, HOUR_TOTAL, hours.first, hours.last, 13), per_hour)
    for edge in edges:
        for minute_prefix, n in edge.histogram:  # a partial hour: minute buckets
            per_hour[minute_prefix[:13]] = per_hour.get(minute_prefix[:13], 0) + n
    total = sum(per_hour.values())
    if not total:
        return FacetCounts(0, {name: [] for name in DIMENSIONS})
    bucket = bucket_width(min(per_hour) + ":00:00.000000Z", max(per_hour) + ":59:59.999999Z")
    histogram: dict[str, int] = {}
    if bucket == "minute":  # a short span: minutes from the timestamp index alone
        _count(conn, histogram_sql(tenant_id, query, bucket), histogram)
    else:
        width = {"hour": 13, "day": 10, "month": 7}[bucket]
        for hour, n in per_hour.items():
            histogram[hour[:width]] = histogram.get(hour[:width], 0) + n
    dimensions = {}
    for name in DIMENSIONS:
        values: dict[str, int] = {}
        _count(conn, rollup_sql(tenant_id, name, days.first, days.last, 10), values)
        for start, end in days.edges:  # the whole hours of each partial day
            inner = plan(start, end, 13)
            if inner is not None:
                _count(conn, rollup_sql(tenant_id, name, inner.first, inner.last, 13), values)
        for edge in edges:
            for value, n in edge.dimensions[name]:
                values[value] = values.get(value, 0) + n
        ranked = sorted(values.items(), key=lambda item: (-item[1], item[0]))
        dimensions[name] = [(v, n) for v, n in ranked[:top] if n > 0]
    return FacetCounts(total, dimensions, bucket, sorted(histogram.items()))


def adjust_rollups(
    conn: sqlite3.Connection,
    tenant_id: str,
    old: dict[str, Any],
    new: dict[str, Any],
) -> None:
    """Move an erased value's count out of the facet rollups (it now reads as NULL)."""
    day = str(old["ts"])[:10]
    for name, column in DIMENSIONS.items():
        if old[column] != new[column]:
            for value, delta in ((old[column], -1), (new[column], 1)):
                if value is not None:
                    conn.execute(
                        _insert_sql("facet_counts", ROLLUP_COLUMNS, 1, _ROLLUP_UPSERT),
                        (tenant_id, name, day, value, delta),
                    )
