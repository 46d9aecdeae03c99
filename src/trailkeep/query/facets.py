"""Facet counts as SQL: distinct values with counts per dimension, and a time histogram."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from trailkeep.query.filters import FILTER_COLUMNS, EventQuery, SqlFragment, where_clause

__all__ = [
    "DIMENSIONS",
    "INDEXED",
    "FacetCounts",
    "FacetPlan",
    "bucket_width",
    "choose_plan",
    "count_rows",
    "days_between",
    "dimension_sql",
    "fold_search",
    "histogram_sql",
    "rank",
    "rollup_days_sql",
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
#: Rows ``count_rows`` takes at a time.
_CHUNK: Final = 10_000


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


def days_between(first: str, last: str) -> list[str]:
    """The day prefixes ``[first, last)``."""
    days = []
    while first < last:
        days.append(first)
        first = _next(first)
    return days


def rollup_sql(
    tenant_id: str,
    dim: str,
    first: str | None,
    last: str | None,
    width: int,
    values: Sequence[str] | None = None,
    *,
    per_period: bool = False,
) -> SqlFragment:
    """Summed rollup counts of one dimension over whole periods ``[first, last)`` of
    ``width`` characters (10: days, 13: hours), per value (per period with ``per_period``
    and for ``HOUR_TOTAL``), of only ``values`` if given."""
    group = "period" if per_period or dim == HOUR_TOTAL else "value"
    sql = (
        f"SELECT {group}, sum(n) FROM facet_counts"  # noqa: S608 - group is a column name
        " WHERE tenant_id = ? AND dim = ? AND length(period) = ?"
    )
    params: list[object] = [tenant_id, dim, width]
    if first is not None:
        sql += " AND period >= ?"
        params.append(first)
    if last is not None:
        sql += " AND period < ?"
        params.append(last)
    if values is not None:
        sql += f" AND value IN ({', '.join('?' * len(values))})"
        params.extend(values)
    return SqlFragment(sql + f" GROUP BY {group} HAVING sum(n) > 0", tuple(params))


def rollup_days_sql(
    tenant_id: str, dim: str, days: Sequence[str], values: Sequence[str] | None = None
) -> SqlFragment:
    """Summed day rollups of one dimension per value over the listed days: one seek per day,
    skipping the hour rows stored between them (a range over days reads those too)."""
    sql = (
        "SELECT value, sum(n) FROM facet_counts WHERE tenant_id = ? AND dim = ?"  # noqa: S608
        f" AND period IN ({', '.join('?' * len(days))})"
    )
    params: list[object] = [tenant_id, dim, *days]
    if values is not None:
        sql += f" AND value IN ({', '.join('?' * len(values))})"
        params.extend(values)
    return SqlFragment(sql + " GROUP BY value HAVING sum(n) > 0", tuple(params))


# -- one pass ---------------------------------------------------------------------------------


def scan_sql(tenant_id: str, query: EventQuery) -> SqlFragment:
    """Minute and dimension columns of every selected event, for one-pass counting.

    The trailing ``seq`` (ignored by :func:`count_rows`) is in no covering facet index:
    without it, SQLite (with no statistics) prefers walking a whole covering index to
    reading a few rows through a filter's index or the full-text rowids. When full text is
    all that selects, ``+tenant_id`` keeps SQLite from walking the tenant's index and
    probing each entry against the matches: it looks the matches up by rowid instead.
    """
    where = where_clause(tenant_id, query)
    sql = where.sql
    if _full_text_only(query):
        assert sql.startswith("tenant_id = ?")
        sql = "+" + sql
    columns = ", ".join(DIMENSIONS.values())
    return SqlFragment(
        f"SELECT substr(ts, 1, 16), {columns}, seq FROM events WHERE {sql}",  # noqa: S608
        where.params,
    )


#: A compiled full-text term: the events whose key is among the index's matches.
_FULL_TEXT: Final = re.compile(r"[\w.]+ IN \(SELECT rowid FROM \w+ WHERE \w+ MATCH \?\)")


def _full_text_only(query: EventQuery) -> bool:
    """Whether a query selects by a search ANDing a full-text term, and nothing else."""
    if query.search is None or query.filters or query.start or query.end:
        return False
    return any(_FULL_TEXT.fullmatch(term) for term in _conjuncts(query.search.sql))


def _conjuncts(sql: str) -> list[str]:
    """The top-level AND terms of a compiled condition (itself when it is not an AND)."""
    terms, depth, start, closed_at = [], 0, 0, -1
    for i, char in enumerate(sql):
        depth += (char == "(") - (char == ")")
        if depth == 0 and closed_at < 0:
            closed_at = i
        if depth == 0 and sql.startswith(" AND ", i):
            terms.append(sql[start:i])
            start = i + len(" AND ")
    if start == 0 and sql.startswith("(") and closed_at == len(sql) - 1:
        return _conjuncts(sql[1:-1])  # one parenthesized term
    return [*terms, sql[start:]]


def count_rows(rows: Iterable[Sequence[Any]], top: int) -> FacetCounts:
    """Facets from ``scan_sql`` rows: one pass over the selection instead of one per facet.

    Rows are counted a chunk at a time, column by column, with ``Counter`` (in C): about
    half the cost of a Python loop over every row.
    """
    names = list(DIMENSIONS)
    counters: list[Counter[str | None]] = [Counter() for _ in names]
    minutes: Counter[str | None] = Counter()
    chunks = iter(rows)
    while chunk := list(itertools.islice(chunks, _CHUNK)):
        columns = list(zip(*chunk, strict=True))
        minutes.update(columns[0])
        for counter, column in zip(counters, columns[1:], strict=False):  # seq is last
            counter.update(column)
    if not minutes:
        return FacetCounts(0, {name: [] for name in names})
    spans = [minute for minute in minutes if minute is not None]
    bucket = bucket_width(min(spans) + ":00.000000Z", max(spans) + ":59.999999Z")
    width = _BUCKETS[bucket]
    histogram: Counter[str] = Counter()
    for minute in spans:
        histogram[minute[:width]] += minutes[minute]
    dimensions = {name: rank(counter, top) for name, counter in zip(names, counters, strict=True)}
    return FacetCounts(minutes.total(), dimensions, bucket, sorted(histogram.items()))


def rank(counts: Mapping[str, int] | Mapping[str | None, int], top: int) -> list[tuple[str, int]]:
    """The ``top`` values by count, then value; NULLs and counts below 1 left out."""
    present = [(v, n) for v, n in counts.items() if v is not None and n > 0]
    return sorted(present, key=lambda item: (-item[1], item[0]))[:top]


# -- plans ------------------------------------------------------------------------------------
#
# Three ways to count a selection, cheapest first (docs/architecture.md, "Facets"):
#
# * rollups: a plain time range reads the rollups (above);
# * index: filters on facet dimensions walk a covering index (SQLite migration 4) once,
#   grouped by every facet column in index order, so SQLite counts as it walks: only the
#   filter's entries when it is on the index's leading column (action, outcome), every entry
#   of the tenant for category and target.type, which have no index of their own. A lone
#   filter takes the total and histogram from the rollups and, when it selects most events,
#   walks the rest instead and subtracts;
# * scan: anything else (free text, JSON fields, actor.id or other indexed filters) reads the
#   selected rows once, through whichever index SQLite finds most selective.

#: Dimensions that lead a covering facet index, preferred first (``action`` is the more
#: selective: 16 values against 3). Both columns are NOT NULL.
INDEXED: Final = ("action", "outcome")
#: Dimension filters better served by their own index than by a covering walk (``actor.id``
#: selects few events; the walk would read the whole tenant).
_SELECTIVE: Final = frozenset({"actor.id"})

#: One term of a compiled search that is a plain filter: ``column = ?``, ``ts >= ?``, ``ts < ?``.
_TERM: Final = re.compile(r"(\w+) (=|>=|<) \?")
_FILTER_NAMES: Final = {column: name for name, column in FILTER_COLUMNS.items()}


@dataclass(frozen=True, slots=True)
class FacetPlan:
    """How a backend with rollups and covering facet indexes counts one selection."""

    kind: Literal["rollups", "index", "scan"]
    #: ``index`` plans: the dimension leading the covering index to walk.
    column: str | None = None


def _plain(query: EventQuery) -> bool:
    """No search and no paging bounds: only filters and a time range select."""
    return (
        query.search is None
        and query.after is None
        and query.max_seq is None
        and query.after_seq is None
    )


def rollup_only(query: EventQuery) -> bool:
    """Whether a query is a plain time range, which the rollups can answer."""
    return _plain(query) and not query.filters


def choose_plan(query: EventQuery) -> FacetPlan:
    """The cheapest exact plan for a query (fold its search first: :func:`fold_search`)."""
    if rollup_only(query):
        return FacetPlan("rollups")
    if _plain(query) and set(query.filters) <= set(DIMENSIONS):
        for name in INDEXED:
            if name in query.filters:
                return FacetPlan("index", name)
        if not _SELECTIVE & set(query.filters):
            return FacetPlan("index", INDEXED[0])
    return FacetPlan("scan")


def fold_search(query: EventQuery) -> EventQuery:
    """The same selection with a search of plain terms moved into filters and the time range.

    A compiled search that only ANDs ``field:value`` terms on filter fields and
    ``timestamp>=``/``timestamp<`` bounds (``q=outcome:failure``) selects exactly what the
    equivalent filters do, and filters are what rollups and indexes can plan for. Anything
    else (OR, NOT, prefixes, free text, a field also filtered or named twice) is returned
    unchanged.
    """
    search = query.search
    if search is None:
        return query
    # Only ANDs, so grouping parentheses change nothing; any other operator fails _TERM.
    terms = search.sql.replace("(", "").replace(")", "").split(" AND ")
    if len(terms) != len(search.params):
        return query
    filters = dict(query.filters)
    start, end = query.start, query.end
    for term, value in zip(terms, search.params, strict=True):
        match = _TERM.fullmatch(term)
        if match is None or not isinstance(value, str):
            return query
        column, op = match.groups()
        name = _FILTER_NAMES.get(column)
        if op == "=" and name is not None and name not in filters:
            filters[name] = [value]
        elif column == "ts" and op == ">=":
            start = value if start is None else max(start, value)
        elif column == "ts" and op == "<":
            end = value if end is None else min(end, value)
        else:
            return query
    return replace(query, filters=filters, start=start, end=end, search=None)
