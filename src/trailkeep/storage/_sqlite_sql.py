"""SQLite statements shared by the writer: multi-row inserts, the facet rollups, and the facet
plans that read them."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from trailkeep.query.facets import DIMENSIONS, FacetCounts, bucket_width, count_rows, rank
from trailkeep.query.filters import EventQuery
from trailkeep.storage._compile import STORE_DIALECTS
from trailkeep.storage._facets import (
    HOUR_TOTAL,
    INDEXED,
    ROLLUP_COLUMNS,
    FacetSelection,
    choose_plan,
    days_between,
    histogram_sql,
    plan,
    rollup_counts,
    rollup_days_sql,
    rollup_sql,
    scan_sql,
)
from trailkeep.storage._sql import SqlFragment
from trailkeep.storage.rows import EVENT_COLUMNS

__all__ = [
    "FACET_INDEXES",
    "ROLLUP_AT",
    "add_rollups",
    "adjust_rollups",
    "insert_many",
    "sqlite_facets",
]

_DIALECT = STORE_DIALECTS["sqlite"]
#: Most bound values in one statement (SQLite's limit is 32,766).
_MAX_VARIABLES = 30_000


@functools.cache
def _insert_sql(table: str, columns: tuple[str, ...], rows: int, suffix: str = "") -> str:
    row = "(" + ", ".join("?" * len(columns)) + ")"
    values = ", ".join([row] * rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}{suffix}"  # noqa: S608


#: Most rows in one statement of ``insert_many``; the sizes it uses are its powers of two.
_MAX_ROWS = 1_024


@functools.cache
def _chunk_rows(columns: int) -> int:
    """The largest power of two rows of ``columns`` values within both limits."""
    rows = 1
    while rows * 2 <= _MAX_ROWS and rows * 2 * columns <= _MAX_VARIABLES:
        rows *= 2
    return rows


def insert_many(
    conn: sqlite3.Connection,
    table: str,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    suffix: str = "",
) -> None:
    """Insert rows with multi-row ``INSERT`` statements of a few fixed sizes.

    Not ``executemany``: it steps once per row, releasing and re-taking the GIL each time;
    while the event loop thread is busy, every re-take can wait a whole switch interval (a
    convoy). One statement per few hundred rows keeps the writer's GIL hand-offs rare.
    Statements hold a power of two of rows (the largest that fits, then the binary digits
    of the rest: 500 rows are 256 + 128 + 64 + 32 + 16 + 4), so a table has at most eleven
    statement shapes, each compiled once and then reused from the connection's statement
    cache; a different arity for every group would compile a new statement each time.
    """
    most = _chunk_rows(len(columns))
    start, total = 0, len(rows)
    while start < total:
        size = most
        while size > total - start:
            size //= 2
        chunk = rows[start : start + size]
        conn.execute(_insert_sql(table, columns, size, suffix), [v for r in chunk for v in r])
        start += size


_ROLLUP_UPSERT = " ON CONFLICT (tenant_id, dim, period, value) DO UPDATE SET n = n + excluded.n"
#: Positions in ``event_row`` of the columns the facet rollups count.
ROLLUP_AT = {c: EVENT_COLUMNS.index(c) for c in ("ts", *DIMENSIONS.values())}


def add_rollups(
    conn: sqlite3.Connection, by_tenant: Mapping[str, list[dict[str, str | None]]]
) -> None:
    """Count new events in the rollups: each tenant's ``ts`` and dimension columns, summed
    over all of them first, so a group of events adds each rollup row once."""
    counts = [c for tenant_id, rows in by_tenant.items() for c in rollup_counts(tenant_id, rows)]
    if counts:
        insert_many(conn, "facet_counts", ROLLUP_COLUMNS, counts, _ROLLUP_UPSERT)


#: Covering facet indexes (migration 6), by the filter dimension that leads each: the name,
#: and the low-cardinality facet columns before ``ts`` in index order (``actor_id`` follows
#: ``ts``). Grouping by those columns follows the index, so SQLite counts as it walks.
FACET_INDEXES: Final = {
    "action": ("events_facet_action", ("action", "outcome", "category", "target_type")),
    "outcome": ("events_facet_outcome", ("outcome", "action", "category", "target_type")),
}
#: Most days one rollup statement names.
_DAYS_PER_STATEMENT: Final = 5_000


@dataclass(slots=True)
class _Tally:
    """Unranked counts of a selection: per hour, and per dimension and value."""

    hours: dict[str, int] = field(default_factory=dict)
    dims: dict[str, dict[str, int]] = field(default_factory=dict)


def _count(conn: sqlite3.Connection, sql: SqlFragment, into: dict[str, int]) -> None:
    for key, n in conn.execute(sql.sql, sql.params):
        into[key] = into.get(key, 0) + n


def sqlite_facets(
    conn: sqlite3.Connection, tenant_id: str, query: EventQuery, top: int
) -> FacetCounts:
    """Facets by the cheapest exact plan (``storage._facets.choose_plan``); call it
    inside one read transaction, so rollups and events agree."""
    sel = FacetSelection.of(query)
    chosen = choose_plan(sel)
    tally = None
    if chosen.kind == "rollups":
        tally = _from_rollups(conn, tenant_id, sel, list(DIMENSIONS))
    elif chosen.kind == "index":
        assert chosen.column is not None
        tally = _from_index(conn, tenant_id, sel, chosen.column)
    if tally is None:
        scan = scan_sql(tenant_id, sel, _DIALECT)
        return count_rows(conn.execute(scan.sql, scan.params), top)
    return _ranked(conn, tenant_id, sel, tally, top)


def _from_rollups(
    conn: sqlite3.Connection,
    tenant_id: str,
    query: FacetSelection,
    dims: list[str],
    only: tuple[str, Sequence[str]] | None = None,
) -> _Tally | None:
    """Whole days, then whole hours, from the rollups; the partial hours at the edges from
    the events. With ``only`` (the query's one filter: a dimension and its values) the hours
    are those of the selected events. None when the range is too short to gain."""
    hours = plan(query.start, query.end, 13)
    days = plan(query.start, query.end, 10)
    if hours is None or days is None:
        return None
    edges = [
        count_rows(conn.execute(scan.sql, scan.params), 2**31)
        for scan in (
            scan_sql(tenant_id, FacetSelection(query.filters, start=s, end=e), _DIALECT)
            for s, e in hours.edges
        )
    ]
    tally = _Tally()
    dim, values = only if only is not None else (HOUR_TOTAL, None)
    per_hour = rollup_sql(tenant_id, dim, hours.first, hours.last, 13, values, per_period=True)
    _count(conn, per_hour, tally.hours)
    for edge in edges:
        for minute, n in edge.histogram:  # a partial hour: minute buckets
            tally.hours[minute[:13]] = tally.hours.get(minute[:13], 0) + n
    whole_days = _days(conn, tenant_id, days.first, days.last) if dims else []
    for name in dims:
        counts = tally.dims[name] = {}
        for lo in range(0, len(whole_days), _DAYS_PER_STATEMENT):
            chunk = whole_days[lo : lo + _DAYS_PER_STATEMENT]
            _count(conn, rollup_days_sql(tenant_id, name, chunk), counts)
        for start, end in days.edges:  # the whole hours of each partial day
            inner = plan(start, end, 13)
            if inner is not None:
                _count(conn, rollup_sql(tenant_id, name, inner.first, inner.last, 13), counts)
        for edge in edges:
            for value, n in edge.dimensions[name]:
                counts[value] = counts.get(value, 0) + n
    return tally


def _days(
    conn: sqlite3.Connection, tenant_id: str, first: str | None, last: str | None
) -> list[str]:
    """The days ``[first, last)``; an open end is where the tenant's events begin or end."""
    if first is None or last is None:
        lowest, highest = conn.execute(
            "SELECT (SELECT min(period) FROM facet_counts WHERE tenant_id = ? AND dim = ?),"
            " (SELECT max(period) FROM facet_counts WHERE tenant_id = ? AND dim = ?)",
            (tenant_id, HOUR_TOTAL, tenant_id, HOUR_TOTAL),
        ).fetchone()
        if lowest is None:
            return []
        first = lowest[:10] if first is None else first
        if last is None:  # through the tenant's last day
            final = highest[:10]
            return [*days_between(first, final), *([final] if first <= final else [])]
    return days_between(first, last)


def _from_index(
    conn: sqlite3.Connection, tenant_id: str, query: FacetSelection, column: str
) -> _Tally:
    """Facet filters: one walk of the covering index led by ``column``.

    A lone filter takes its hours from the rollups and, when it is on a NOT NULL column and
    selects most of the range (``outcome=success``), walks the rest instead and subtracts it
    from the range's rollups.
    """
    if len(query.filters) != 1:
        return _walked(conn, tenant_id, query, column)
    ((name, chosen),) = query.filters.items()
    values = list(dict.fromkeys(chosen))
    tally = _from_rollups(conn, tenant_id, query, [], (name, values))
    if tally is None:
        return _walked(conn, tenant_id, query, column)
    unfiltered = replace(query, filters={})
    if name in INDEXED:  # NOT NULL: every event is either selected or in the rest
        everything = _from_rollups(conn, tenant_id, unfiltered, [])
        assert everything is not None  # the same range
        if sum(tally.hours.values()) * 2 > sum(everything.hours.values()):
            return _complement(conn, tenant_id, query, column, tally, values)
    tally.dims = _walk(conn, tenant_id, query, column)
    return tally


def _complement(
    conn: sqlite3.Connection,
    tenant_id: str,
    query: FacetSelection,
    column: str,
    tally: _Tally,
    values: list[str],
) -> _Tally:
    """Counts of ``column`` in ``values`` as the range's rollups minus a walk of the rest."""
    everything = _from_rollups(conn, tenant_id, replace(query, filters={}), list(DIMENSIONS))
    assert everything is not None  # the same range as the caller's
    rest = [v for v, n in everything.dims[column].items() if n > 0 and v not in values]
    tally.dims = everything.dims
    if rest:
        walked = _walk(conn, tenant_id, replace(query, filters={column: rest}), column)
        for name, counts in walked.items():
            into = tally.dims[name]
            for value, n in counts.items():
                into[value] = into.get(value, 0) - n
    return tally


def _walked(conn: sqlite3.Connection, tenant_id: str, query: FacetSelection, column: str) -> _Tally:
    """Hours and dimensions, both from the covering index led by ``column``."""
    index, _ = FACET_INDEXES[column]
    where = query.where(tenant_id, _DIALECT)
    sql = (
        f"SELECT substr(ts, 1, 13), count(*) FROM events INDEXED BY {index}"  # noqa: S608
        f" WHERE {where.sql} GROUP BY 1"
    )
    hours = dict(conn.execute(sql, where.params).fetchall())
    return _Tally(hours, _walk(conn, tenant_id, query, column))


def _walk(
    conn: sqlite3.Connection, tenant_id: str, query: FacetSelection, column: str
) -> dict[str, dict[str, int]]:
    """Every dimension's counts from the covering index led by ``column``: its low-cardinality
    columns grouped in index order (no sort), then ``actor_id`` grouped on its own (a sort of
    the selected entries). The index is named: the planner might otherwise pick one that
    reads the table to avoid a sort."""
    index, columns = FACET_INDEXES[column]
    where = query.where(tenant_id, _DIALECT)
    listed = ", ".join(columns)
    names = {c: name for name, c in DIMENSIONS.items()}
    dims: dict[str, dict[str, int]] = {name: {} for name in DIMENSIONS}
    counters = [dims[names[c]] for c in columns]
    combinations = (
        f"SELECT {listed}, count(*) FROM events INDEXED BY {index}"  # noqa: S608 - names
        f" WHERE {where.sql} GROUP BY {listed}"
    )
    for row in conn.execute(combinations, where.params):
        n = row[-1]
        for counts, value in zip(counters, row, strict=False):
            if value is not None:
                counts[value] = counts.get(value, 0) + n
    actors = (
        f"SELECT actor_id, count(*) FROM events INDEXED BY {index}"  # noqa: S608 - names
        f" WHERE {where.sql} AND actor_id IS NOT NULL GROUP BY actor_id"
    )
    dims["actor.id"] = dict(conn.execute(actors, where.params).fetchall())
    return dims


def _ranked(
    conn: sqlite3.Connection, tenant_id: str, query: FacetSelection, tally: _Tally, top: int
) -> FacetCounts:
    """The response: total, top values, and a histogram whose bucket suits the span."""
    hours = [hour for hour, n in tally.hours.items() if n > 0]
    if not hours:
        return FacetCounts(0, {name: [] for name in DIMENSIONS})
    bucket = bucket_width(min(hours) + ":00:00.000000Z", max(hours) + ":59:59.999999Z")
    histogram: dict[str, int] = {}
    if bucket == "minute":  # a short span: minutes from an index
        _count(conn, histogram_sql(tenant_id, query, _DIALECT, bucket), histogram)
    else:
        width = {"hour": 13, "day": 10, "month": 7}[bucket]
        for hour in hours:
            histogram[hour[:width]] = histogram.get(hour[:width], 0) + tally.hours[hour]
    dimensions = {name: rank(tally.dims[name], top) for name in DIMENSIONS}
    total = sum(tally.hours[hour] for hour in hours)
    return FacetCounts(total, dimensions, bucket, sorted(histogram.items()))


def adjust_rollups(
    conn: sqlite3.Connection,
    tenant_id: str,
    old: dict[str, Any],
    new: dict[str, Any],
) -> None:
    """Move an erased value's count out of the facet rollups (it now reads as NULL), from
    its day and its hour."""
    ts = str(old["ts"])
    for name, column in DIMENSIONS.items():
        if old[column] != new[column]:
            for value, delta in ((old[column], -1), (new[column], 1)):
                if value is not None:
                    for period in (ts[:10], ts[:13]):
                        conn.execute(
                            _insert_sql("facet_counts", ROLLUP_COLUMNS, 1, _ROLLUP_UPSERT),
                            (tenant_id, name, period, value, delta),
                        )
