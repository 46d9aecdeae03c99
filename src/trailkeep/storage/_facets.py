"""Facet plans and their SQL: the rollups the writer keeps, the cheapest exact plan for a
selection (from its tree), and the statements each plan runs.

A facet request's tree is first split (``FacetSelection.of``): ANDed ``Values`` (and
``field:value`` terms) on facet columns become filters, ``timestamp`` bounds narrow the range,
and the rest stays a condition. Filters and a range are what rollups and covering indexes can
plan for; anything else is counted by one scan of the selected rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from trailkeep.errors import TimeParseError
from trailkeep.model.timeparse import utcnow
from trailkeep.query.ast import And, Compare, Node, Term, Values
from trailkeep.query.facets import BUCKETS, DIMENSIONS
from trailkeep.query.fields import FieldError, FieldKind, resolve
from trailkeep.query.filters import FILTER_COLUMNS, EventQuery, conjoin, filter_node
from trailkeep.query.values import as_time
from trailkeep.storage._compile import is_text
from trailkeep.storage._dialects import HOUR_TOTAL, Dialect
from trailkeep.storage._select import where_sql
from trailkeep.storage._sql import SqlFragment

__all__ = [
    "HOUR_TOTAL",
    "INDEXED",
    "ROLLUP_COLUMNS",
    "FacetPlan",
    "FacetSelection",
    "RollupPlan",
    "choose_plan",
    "days_between",
    "dimension_sql",
    "histogram_sql",
    "plan",
    "rollup_counts",
    "rollup_days_sql",
    "rollup_sql",
    "scan_sql",
    "span_sql",
    "without_filters",
]


@dataclass(frozen=True, slots=True)
class FacetSelection:
    """A facet request's selection, split for planning.

    Attributes:
        filters: native filter name → accepted values (strings), ANDed.
        start: inclusive lower bound on ``timestamp``.
        end: exclusive upper bound on ``timestamp``.
        rest: every other condition, or None.
        paged: the query also bounds ``seq`` or a keyset position (no rollup can answer it).
        query: the original query, for its paging bounds.
    """

    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    start: str | None = None
    end: str | None = None
    rest: Node | None = None
    paged: bool = False
    query: EventQuery = field(default_factory=EventQuery)

    @classmethod
    def of(cls, query: EventQuery, *, now: datetime | None = None) -> FacetSelection:
        """The selection of ``query``: its plain conditions folded into filters and range."""
        paged = query.after is not None or query.max_seq is not None or query.after_seq is not None
        children: tuple[Node, ...] = ()
        if query.where is not None:
            children = query.where.children if isinstance(query.where, And) else (query.where,)
        filters: dict[str, list[str]] = {}
        start, end = query.start, query.end
        rest: list[Node] = []
        for child in _flatten(children):
            folded = _filter(child)
            bound = _bound(child, utcnow() if now is None else now)
            if folded is not None and folded[0] not in filters:
                filters[folded[0]] = folded[1]
            elif bound is not None and bound[0] == ">=":
                start = bound[1] if start is None else max(start, bound[1])
            elif bound is not None:
                end = bound[1] if end is None else min(end, bound[1])
            else:
                rest.append(child)
        return cls(filters, start, end, conjoin(*rest), paged, query)

    def where(self, tenant_id: str, dialect: Dialect) -> SqlFragment:
        """The WHERE condition (no keyword) of the selection."""
        q = self.query
        query = EventQuery(
            conjoin(filter_node(self.filters), self.rest),
            self.start,
            self.end,
            after=q.after,
            max_seq=q.max_seq,
            after_seq=q.after_seq,
            sort=q.sort,
        )
        return where_sql(tenant_id, query, dialect)

    @property
    def full_text_only(self) -> bool:
        """Whether a full-text group ANDed with filters (no range) selects: its matches are
        then fewer than any index walk would read."""
        if self.start or self.end or self.paged or self.rest is None:
            return False
        children = self.rest.children if isinstance(self.rest, And) else (self.rest,)
        return any(is_text(child) for child in children)


def _flatten(children: tuple[Node, ...]) -> list[Node]:
    out: list[Node] = []
    for child in children:
        if isinstance(child, And) and child.children:
            out.extend(_flatten(child.children))
        else:
            out.append(child)
    return out


def _filter_name(path: tuple[str, ...] | None) -> str | None:
    if path is None:
        return None
    try:
        spec = resolve(path)
    except FieldError:
        return None
    if spec.kind is not FieldKind.TEXT or spec.column is None:
        return None
    for name, column in FILTER_COLUMNS.items():
        if column == spec.column:
            return name
    return None


def _filter(node: Node) -> tuple[str, list[str]] | None:
    """``(filter name, values)`` when ``node`` is a plain filter on a filter column."""
    if isinstance(node, Values):
        name = _filter_name(node.field)
        if name is None or not node.values or any(type(v) is not str for v in node.values):
            return None
        return name, [str(v) for v in node.values]
    if isinstance(node, Term) and node.op == ":" and not node.prefix:
        name = _filter_name(node.field)
        return None if name is None else (name, [node.value])
    return None


def _bound(node: Node, now: datetime) -> tuple[str, str] | None:
    """``(">=" or "<", time)`` when ``node`` bounds ``timestamp`` as ``start``/``end`` do."""
    if isinstance(node, Compare) and node.field == ("timestamp",) and type(node.value) is str:
        return (node.op, node.value) if node.op in (">=", "<") else None
    if isinstance(node, Term) and node.field == ("timestamp",) and node.op in (">=", "<"):
        try:
            instant = as_time(node.value, param="timestamp", now=now)
        except TimeParseError:
            return None
        return None if instant is None else (node.op, instant)
    return None


# -- rollups ----------------------------------------------------------------------------------
#
# Counting a million rows per request is too slow, so the writer keeps running counts in
# ``facet_counts``: per dimension, value and *day* and *hour* (the period's length tells which),
# and per hour for the total (dimension ``_hour``, value ""). A facet request whose selection
# is only a time range reads whole days, then whole hours, from the rollups and counts just the
# partial hours at its edges from the events.

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


# -- statements ---------------------------------------------------------------------------


def span_sql(tenant_id: str, sel: FacetSelection, dialect: Dialect) -> SqlFragment:
    """Count, first and last timestamp of the selection."""
    where = sel.where(tenant_id, dialect)
    return SqlFragment(
        f"SELECT count(*), min(ts), max(ts) FROM {dialect.events_from(where.sql)}"  # noqa: S608
        f" WHERE {where.sql}",
        where.params,
    )


def dimension_sql(
    tenant_id: str, sel: FacetSelection, dialect: Dialect, name: str, top: int
) -> SqlFragment:
    """The ``top`` most frequent values of one dimension (NULLs left out)."""
    column = DIMENSIONS[name]
    where = sel.where(tenant_id, dialect)
    ph = dialect.typed.placeholder
    return SqlFragment(
        f"SELECT {column}, count(*) AS n FROM {dialect.events_from(where.sql)}"  # noqa: S608
        f" WHERE {where.sql} AND {column} IS NOT NULL"
        f" GROUP BY {column} ORDER BY n DESC, {column} LIMIT {ph}",
        (*where.params, top),
    )


def histogram_sql(
    tenant_id: str, sel: FacetSelection, dialect: Dialect, bucket: str
) -> SqlFragment:
    """Counts per time bucket, oldest first; a bucket is named by its timestamp prefix."""
    width = BUCKETS[bucket]
    where = sel.where(tenant_id, dialect)
    return SqlFragment(
        f"SELECT substr(ts, 1, {width}) AS b, count(*) FROM {dialect.events_from(where.sql)}"  # noqa: S608
        f" WHERE {where.sql} GROUP BY b ORDER BY b",
        where.params,
    )


def scan_sql(tenant_id: str, sel: FacetSelection, dialect: Dialect) -> SqlFragment:
    """Minute and dimension columns of every selected event, for one-pass counting.

    The trailing ``seq`` (ignored by ``count_rows``) is in no covering facet index:
    without it, SQLite (with no statistics) prefers walking a whole covering index to
    reading a few rows through a filter's index or the full-text rowids. When full text is
    all that selects, ``+tenant_id`` keeps SQLite from walking the tenant's index and
    probing each entry against the matches: it looks the matches up by rowid instead.
    """
    where = sel.where(tenant_id, dialect)
    sql = where.sql
    if sel.full_text_only:
        sql = "+" + sql  # where_sql starts with the tenant condition
    columns = ", ".join(DIMENSIONS.values())
    return SqlFragment(
        f"SELECT substr(ts, 1, 16), {columns}, seq FROM {dialect.events_from(sql)}"  # noqa: S608
        f" WHERE {sql}",
        where.params,
    )


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


@dataclass(frozen=True, slots=True)
class FacetPlan:
    """How a backend with rollups and covering facet indexes counts one selection."""

    kind: Literal["rollups", "index", "scan"]
    #: ``index`` plans: the dimension leading the covering index to walk.
    column: str | None = None


def _plain(sel: FacetSelection) -> bool:
    """No other condition and no paging bounds: only filters and a time range select."""
    return sel.rest is None and not sel.paged


def choose_plan(sel: FacetSelection) -> FacetPlan:
    """The cheapest exact plan for a selection."""
    if _plain(sel) and not sel.filters:
        return FacetPlan("rollups")
    if _plain(sel) and set(sel.filters) <= set(DIMENSIONS):
        for name in INDEXED:
            if name in sel.filters:
                return FacetPlan("index", name)
        if not _SELECTIVE & set(sel.filters):
            return FacetPlan("index", INDEXED[0])
    return FacetPlan("scan")


def without_filters(sel: FacetSelection, filters: Mapping[str, Sequence[str]]) -> FacetSelection:
    """The same range (and rest) with other filters."""
    return replace(sel, filters=filters)
