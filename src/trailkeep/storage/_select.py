"""Whole reads as SQL: an ``EventQuery`` → WHERE, ORDER BY and window, for either backend.

The backend passes its dialect (placeholders, JSON and full-text spelling); every value is
bound. The order is ``(timestamp, id)`` (or ``seq``), after an ``order_by`` field's key when
the query has one (``_json_sql``: a missing value sorts as the smallest).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from trailkeep.errors import InvalidInputError
from trailkeep.query.ast import And, Compare, Node, Values
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.storage._compile import compile_node, locate
from trailkeep.storage._dialects import HOUR_TOTAL, Dialect
from trailkeep.storage._sql import SqlFragment

__all__ = ["HOUR_JUMP_OFFSET", "count_sql", "distinct_sql", "order_sql", "select_sql", "where_sql"]

#: Facet dimensions of few values (``facet_counts``), whose day rollups a total of one of them
#: sums faster than it counts their index entries (an actor has thousands of rows of rollups).
_ROLLUP_TOTALS: Final = frozenset({("action",), ("category",), ("outcome",), ("target", "type")})
#: The offset from which a page of the whole tenant in time order starts its walk at the hour
#: the hour totals place it in (below it, walking the skipped rows is as cheap).
HOUR_JUMP_OFFSET: Final = 1000
#: Most positions a deep page in log order leaves out of its seq range (events outside its
#: arrival bounds, pruned events) for the page to be placed by arithmetic on ``seq``; past it,
#: the skipped rows are walked.
SEQ_JUMP_GAPS: Final = 4096
#: The fixed-width timestamp a range edge must be for the hour totals to split it.
_FIXED_WIDTH: Final = "2026-01-01T00:00:00.000000Z"
#: The complement of an arrival bound: the events a bound ``received_at {op} v`` leaves out.
_OUTSIDE: Final = {">=": "<", ">": "<=", "<": ">=", "<=": ">"}


def where_sql(
    tenant_id: str, query: EventQuery, dialect: Dialect, *, now: datetime | None = None
) -> SqlFragment:
    """The WHERE condition (without the keyword) of a query."""
    ph = dialect.typed.placeholder
    parts = [f"tenant_id = {ph}"]
    params: list[object] = [tenant_id]
    if query.start is not None:
        parts.append(f"ts >= {ph}")
        params.append(query.start)
    if query.end is not None:
        parts.append(f"ts < {ph}")
        params.append(query.end)
    if query.after is not None and not query.by_seq:
        op = "<" if query.sort is Sort.DESC else ">"
        parts.append(f"(ts, id) {op} ({ph}, {ph})")
        params.extend(query.after)
    if query.max_seq is not None:
        parts.append(f"seq <= {ph}")
        params.append(query.max_seq)
    if query.after_seq is not None:
        parts.append(f"seq > {ph}")
        params.append(query.after_seq)
    if query.where is not None:
        condition = compile_node(query.where, dialect, now=now)
        parts.append(condition.sql)
        params.extend(condition.params)
    return SqlFragment(" AND ".join(parts), tuple(params))


def order_sql(query: EventQuery, dialect: Dialect) -> SqlFragment:
    """``ORDER BY ...`` for a query."""
    direction = "DESC" if query.sort is Sort.DESC else "ASC"
    if query.by_seq:
        return SqlFragment(f"ORDER BY seq {direction}", ())
    tail = f"ts {direction}, id {direction}"
    if query.order_by is None:
        return SqlFragment(f"ORDER BY {tail}", ())
    where = locate(query.order_by)
    column = where.column
    if column is not None:
        # A column holds strings only (or is NOT NULL): missing first, then by value. Where
        # NULL already sorts so, the order is the plain columns', which an index on
        # ``(tenant_id, [filter,] column, ts, id)`` walks without a sort.
        if dialect.nulls_smallest:
            return SqlFragment(f"ORDER BY {column} {direction}, {tail}", ())
        # Spelled so that an index with the column NULLS FIRST (PostgreSQL's events_actor,
        # migration 9) walks the order one way or the other with no sort.
        nulls = "NULLS LAST" if query.sort is Sort.DESC else "NULLS FIRST"
        return SqlFragment(f"ORDER BY {column} {direction} {nulls}, {tail}", ())
    if where.ref is None:
        raise InvalidInputError(f"cannot order by {'.'.join(query.order_by)}")
    # Arrays and objects tie (their JSON text differs between backends): rank, number, string.
    keys = dialect.typed.order_key(where.ref)[:3]
    listed = ", ".join(f"{k.sql} {direction}" for k in keys)
    return SqlFragment(f"ORDER BY {listed}, {tail}", tuple(p for k in keys for p in k.params))


def select_sql(tenant_id: str, query: EventQuery, dialect: Dialect, columns: str) -> SqlFragment:
    """One page: ``columns`` of the matches, in order, ``offset`` skipped, ``limit`` taken.

    With an offset, the skipped rows are walked by their row key alone (SQLite's row id, which
    every index holds, so any index that holds the conditions' columns and the order covers the
    walk), and only the page's rows are read from the table: skipping 500,000 rows then costs
    an index scan, not 500,000 row reads.
    """
    plan = _hour_jump(query, dialect)
    if plan is not None:
        return _hour_jump_sql(tenant_id, query, dialect, columns, plan)
    bounds = _seq_jump_bounds(query)
    if bounds is not None:
        return _seq_jump_sql(tenant_id, query, dialect, columns, bounds)
    where = where_sql(tenant_id, query, dialect)
    order = order_sql(query, dialect)
    ph = dialect.typed.placeholder
    source = dialect.events_from(where.sql, order.sql)
    if query.offset == 0:
        sql = (
            f"SELECT {columns} FROM {source} WHERE {where.sql} {order.sql}"  # noqa: S608 - bound
            f" LIMIT {ph}"
        )
        return SqlFragment(sql, (*where.params, *order.params, query.limit))
    key = f"events.{dialect.row_key}"
    page = (
        f"SELECT {key} FROM {source} WHERE {where.sql} {order.sql}"  # noqa: S608 - bound
        f" LIMIT {ph} OFFSET {ph}"
    )
    sql = (
        f"SELECT {columns} FROM {dialect.events_from(order.sql)}"  # noqa: S608 - bound
        f" WHERE {key} IN ({page}) {order.sql}"
    )
    params = (*where.params, *order.params, query.limit, query.offset, *order.params)
    return SqlFragment(sql, params)


@dataclass(frozen=True, slots=True)
class _HourPlan:
    """A selection the hour totals count: ``dim`` among ``values`` (``'_hour'``: every
    event), whole hours strictly between the range's edge hours from the totals, the partial
    edge hours (``first``, ``last``: the hours of ``start`` and ``end``) from the events."""

    dim: str
    values: tuple[str, ...]
    first: str | None
    last: str | None


def _hour_plan(query: EventQuery, dialect: Dialect) -> _HourPlan | None:
    """How the hour totals count ``query``'s matches, or None when they cannot: a condition
    other than one field of ``dialect.hour_dims`` equal to one of some strings, a ``seq``
    bound, a range edge not fixed-width, or a range within one hour (cheap to walk)."""
    if query.max_seq is not None or query.after_seq is not None:
        return None
    node = query.where
    values: tuple[str, ...]
    if node is None:
        dim, values = HOUR_TOTAL, ("",)
    elif isinstance(node, Values) and node.field in dialect.hour_dims and node.values:
        if any(type(v) is not str for v in node.values):
            return None
        dim, values = ".".join(node.field), tuple(str(v) for v in node.values)
    else:
        return None
    edges = [t for t in (query.start, query.end) if t is not None]
    if any(len(t) != len(_FIXED_WIDTH) or t[13] != ":" for t in edges):
        return None
    first = None if query.start is None else query.start[:13]
    last = None if query.end is None else query.end[:13]
    if first is not None and last is not None and first >= last:
        return None
    return _HourPlan(dim, values, first, last)


def _hour_rows(tenant_id: str, query: EventQuery, dialect: Dialect, plan: _HourPlan) -> SqlFragment:
    """``(period, n)`` rows of the matches' counts: each whole hour of the range from the
    totals, each partial edge hour counted from the events (an index walk of one hour)."""
    ph = dialect.typed.placeholder
    marks = ", ".join([ph] * len(plan.values))
    sql = (
        f"SELECT period, sum(n) AS n FROM {dialect.hour_totals} AS totals"  # noqa: S608
        f" WHERE tenant_id = {ph} AND dim = {ph} AND value IN ({marks})"
    )
    params: list[object] = [tenant_id, plan.dim, *plan.values]
    if plan.first is not None:
        sql += f" AND period > {ph}"
        params.append(plan.first)
    if plan.last is not None:
        sql += f" AND period < {ph}"
        params.append(plan.last)
    sql += " GROUP BY period"
    edges: list[tuple[str, str | None, str | None]] = []
    if plan.first is not None:
        edges.append((plan.first, query.start, plan.first + ";"))
    if plan.last is not None:
        edges.append((plan.last, plan.last, query.end))
    for hour, lo, hi in edges:
        within = EventQuery(query.where, lo, hi)
        where = where_sql(tenant_id, within, dialect)
        source = dialect.events_from(where.sql)
        sql += f" UNION ALL SELECT CAST({ph} AS TEXT), count(*) FROM {source} WHERE {where.sql}"  # noqa: S608
        params.extend((hour, *where.params))
    return SqlFragment(sql, tuple(params))


def _hour_jump(query: EventQuery, dialect: Dialect) -> _HourPlan | None:
    """How a deep page in time order, of a selection the hour totals count, is placed."""
    if query.offset < HOUR_JUMP_OFFSET:
        return None
    page = EventQuery(
        query.where, query.start, query.end, sort=query.sort, limit=query.limit,
        offset=query.offset, max_seq=query.max_seq, after_seq=query.after_seq,
    )  # fmt: skip
    return _hour_plan(query, dialect) if query == page else None


def _hour_jump_sql(
    tenant_id: str, query: EventQuery, dialect: Dialect, columns: str, plan: _HourPlan
) -> SqlFragment:
    """A deep page, its skip mostly counted rather than walked.

    The hour counts of the matches (``_hour_rows``: ``Dialect.hour_totals`` for whole hours,
    the events for the range's partial edge hours), summed from the first hour in the page's
    order, name the hour where the ``offset``-th match lies and how many matches the hours
    before it hold; the page is then the matches from that hour's start on (an index seek on
    ``(tenant_id, [column,] ts, id)``), with only the rest of the offset walked. ``ts`` is
    fixed-width, so an hour ``2026-11-07T10`` holds exactly the times ``>= '2026-11-07T10'``
    and ``< '2026-11-07T10;'`` (``;`` follows ``:``). The totals are exact (the writer keeps
    them with the events, deletions and erasures take theirs out; ``verify database``
    recounts them), so the page is the one a full walk finds; past the last match
    it is empty.
    """
    ph = dialect.typed.placeholder
    desc = query.sort is Sort.DESC
    direction = "DESC" if desc else "ASC"
    bound = (
        "ts < (SELECT period || ';' FROM landing)" if desc else "ts >= (SELECT period FROM landing)"
    )
    rows = _hour_rows(tenant_id, query, dialect, plan)
    where = where_sql(tenant_id, query, dialect)
    key = f"events.{dialect.row_key}"
    order = f"ORDER BY ts {direction}, id {direction}"
    sql = (
        f"WITH hours AS (SELECT period, n, sum(n) OVER (ORDER BY period {direction}"  # noqa: S608
        f" ROWS UNBOUNDED PRECEDING) AS through FROM ({rows.sql}) AS counted),"
        f" landing AS (SELECT period, through - n AS before FROM hours WHERE through > {ph}"
        f" ORDER BY period {direction} LIMIT 1)"
        f" SELECT {columns} FROM events WHERE {key} IN (SELECT {key}"
        f" FROM {dialect.events_from(where.sql)} WHERE {where.sql} AND {bound} {order}"
        f" LIMIT {ph} OFFSET coalesce((SELECT {ph} - before FROM landing), 0)) {order}"
    )
    params = (*rows.params, query.offset, *where.params, query.limit, query.offset)
    return SqlFragment(sql, params)


def _hour_total(tenant_id: str, query: EventQuery, dialect: Dialect) -> SqlFragment | None:
    """The count of a selection the hour totals count (``_hour_plan``): whole hours summed,
    partial edge hours counted from the events."""
    plan = _hour_plan(query, dialect)
    if plan is None:
        return None
    rows = _hour_rows(tenant_id, query, dialect, plan)
    sql = f"SELECT coalesce(sum(n), 0) FROM ({rows.sql}) AS counted"  # noqa: S608 - bound
    return SqlFragment(sql, rows.params)


def _seq_jump_bounds(query: EventQuery) -> list[Compare] | None:
    """The arrival bounds of a deep page in log order whose only condition they are (none
    when the page is of the whole log), or None when ``query`` is not such a page."""
    if not query.by_seq or query.offset < HOUR_JUMP_OFFSET:
        return None
    page = EventQuery(
        query.where, sort=query.sort, limit=query.limit, offset=query.offset, by_seq=True
    )
    if query != page:
        return None
    node: Node | None = query.where
    children = () if node is None else node.children if isinstance(node, And) else (node,)
    bounds: list[Compare] = []
    for child in children:
        if not isinstance(child, Compare) or child.field != ("received_at",):
            return None
        if type(child.value) is not str or child.op not in _OUTSIDE:
            return None
        bounds.append(child)
    return bounds


def _seq_jump_sql(
    tenant_id: str, query: EventQuery, dialect: Dialect, columns: str, bounds: list[Compare]
) -> SqlFragment:
    """A deep page in log order (within arrival bounds), placed by arithmetic on ``seq``.

    A tenant's log holds every ``seq`` from 0 to ``size - 1`` once, as an events row or as a
    pruned event's tombstone (the writer and pruning keep ``tree_heads`` with them). From the
    lowest live ``seq`` (``lo``) to the top (``size - 1``), the matches are those positions
    less the *gaps*: the tombstones above ``lo`` and the events outside the arrival bounds
    (an index range per bound on ``(tenant_id, received_at, seq)``, partial on ``seq >= 0``
    so that only this statement reads it; ``UNION`` counts an event outside two bounds once).
    With the gaps ``g_1, g_2, ...`` in the page's order, the ``offset``-th match is
    ``top - offset - j`` (newest first; ``lo + offset + j`` oldest first), ``j`` being the
    number of gaps with at most ``offset`` matches before them (``|top - g_i| - (i - 1)``).
    The page is then the matches from there on: an index seek. With more than
    ``SEQ_JUMP_GAPS`` gaps it is the ordinary walk of the skipped rows instead; both arms are
    one statement (one snapshot), the unused one gated off by a ``LIMIT`` of 0, which both
    engines check before reading a row (a constant ``WHERE`` term does not stop SQLite's walk
    of an ``OFFSET``).
    """
    ph = dialect.typed.placeholder
    desc = query.sort is Sort.DESC
    direction = "DESC" if desc else "ASC"
    cap = SEQ_JUMP_GAPS + 1
    gaps = [
        f"SELECT seq FROM (SELECT seq FROM pruned_events WHERE tenant_id = {ph}"  # noqa: S608
        f" AND seq > (SELECT lo FROM low) LIMIT {cap}) AS p"
    ]
    params: list[object] = [tenant_id]
    for i, bound in enumerate(bounds):
        gaps.append(
            f"SELECT seq FROM (SELECT seq FROM events WHERE tenant_id = {ph}"  # noqa: S608
            f" AND received_at {_OUTSIDE[bound.op]} {ph} AND seq >= 0 LIMIT {cap}) AS b{i}"
        )
        params.extend((tenant_id, bound.value))
    if desc:
        position, target = "(SELECT top FROM head) - seq", "(SELECT top FROM head) - {0} - {1}"
    else:
        position, target = "seq - (SELECT lo FROM low)", "(SELECT lo FROM low) + {0} + {1}"
    jump = target.format(ph, "count(*)")
    where = where_sql(tenant_id, EventQuery(query.where, by_seq=True), dialect)
    order = f"ORDER BY seq {direction}"
    near = "<=" if desc else ">="
    key = f"events.{dialect.row_key}"
    few = f"(SELECT count(*) FROM gaps) <= {SEQ_JUMP_GAPS}"  # noqa: S608 - ours
    sql = (
        f"WITH head AS (SELECT size - 1 AS top FROM tree_heads WHERE tenant_id = {ph}),"  # noqa: S608
        f" low AS (SELECT seq AS lo FROM events WHERE tenant_id = {ph} ORDER BY seq LIMIT 1),"
        f" gaps AS ({' UNION '.join(gaps)}),"
        f" ranked AS (SELECT seq, row_number() OVER ({order}) AS i FROM gaps),"
        f" jump AS (SELECT {jump} AS x FROM ranked WHERE {position} - (i - 1) <= {ph})"
        f" SELECT {columns} FROM events WHERE {key} IN ("
        f"SELECT k FROM (SELECT {key} AS k FROM events WHERE {where.sql}"
        f" AND seq {near} (SELECT x FROM jump) {order}"
        f" LIMIT (CASE WHEN {few} THEN {ph} ELSE 0 END)) AS near_page"
        f" UNION ALL SELECT k FROM (SELECT {key} AS k FROM events WHERE {where.sql} {order}"
        f" LIMIT (CASE WHEN {few} THEN 0 ELSE {ph} END) OFFSET {ph}) AS walked_page) {order}"
    )
    return SqlFragment(
        sql,
        (
            tenant_id,
            tenant_id,
            *params,
            query.offset,
            query.offset,
            *where.params,
            query.limit,
            *where.params,
            query.limit,
            query.offset,
        ),
    )


def count_sql(tenant_id: str, query: EventQuery, dialect: Dialect) -> SqlFragment:
    """The exact number of matches (limit, offset and ``after`` ignored).

    With no condition at all it is the log's size (``tree_heads``) less its pruned events
    (retention keeps their seq but no row to list), so the count is exact without walking a
    million index entries; a seq range subtracts the tombstones inside it. With one condition,
    the field of a facet dimension of few values equal to one of some strings, it is a sum of
    that dimension's day rollups (``_rollup_total``), which pruning decrements.
    """
    rolled = _rollup_total(tenant_id, query, dialect)
    if rolled is not None:
        return rolled
    ph = dialect.typed.placeholder
    whole = query.where is None and query.start is None and query.end is None
    hours = None if whole else _hour_total(tenant_id, query, dialect)
    if hours is not None:
        return hours
    if whole:
        if query.after_seq is None and query.max_seq is None:
            return SqlFragment(
                f"SELECT size - pruned FROM tree_heads WHERE tenant_id = {ph}",  # noqa: S608
                (tenant_id,),
            )
        low = -1 if query.after_seq is None else query.after_seq
        high: str = "size - 1"
        bound: tuple[int, ...] = ()
        if query.max_seq is not None:
            high = f"(CASE WHEN size - 1 < {ph} THEN size - 1 ELSE {ph} END)"
            bound = (query.max_seq, query.max_seq)
        pruned = (
            "(SELECT count(*) FROM pruned_events p WHERE p.tenant_id = tree_heads.tenant_id"  # noqa: S608
            f" AND p.seq > {ph} AND p.seq <= {high})"
        )
        sql = (
            f"SELECT CASE WHEN {high} > {ph} THEN {high} - {ph} - {pruned} ELSE 0 END"  # noqa: S608
            f" FROM tree_heads WHERE tenant_id = {ph}"
        )
        return SqlFragment(sql, (*bound, low, *bound, low, low, *bound, tenant_id))
    unpaged = EventQuery(
        query.where, query.start, query.end, max_seq=query.max_seq, after_seq=query.after_seq
    )
    where = where_sql(tenant_id, unpaged, dialect)
    source = dialect.events_from(where.sql)
    return SqlFragment(f"SELECT count(*) FROM {source} WHERE {where.sql}", where.params)  # noqa: S608


def _rollup_total(tenant_id: str, query: EventQuery, dialect: Dialect) -> SqlFragment | None:
    """The count of ``action``/``category``/``outcome``/``target.type`` equal to one of some
    strings over the whole tenant, from the day rollups (``facet_counts``, dimension named as
    the field, periods ``YYYY-MM-DD``), which count exactly the events whose column holds the
    value; None when the query is not that."""
    node = query.where
    if not dialect.rollups or not isinstance(node, Values) or node.field not in _ROLLUP_TOTALS:
        return None
    bounded = (query.start, query.end, query.max_seq, query.after_seq) != (None, None, None, None)
    if bounded or not node.values or any(type(v) is not str for v in node.values):
        return None
    ph = dialect.typed.placeholder
    marks = ", ".join([ph] * len(node.values))
    sql = (
        f"SELECT coalesce(sum(n), 0) FROM facet_counts WHERE tenant_id = {ph}"  # noqa: S608
        f" AND dim = {ph} AND length(period) = 10 AND value IN ({marks})"
    )
    return SqlFragment(sql, (tenant_id, ".".join(node.field), *node.values))


def distinct_sql(
    tenant_id: str, field: tuple[str, ...], query: EventQuery, dialect: Dialect, limit: int
) -> tuple[SqlFragment, bool]:
    """Distinct values of ``field`` among the matches with counts, most frequent first.

    Returns the statement and whether its rows are ``(value, n)`` (a column) rather than
    ``(rank, number, string, json, n)`` (a JSON value; ``_json_sql.from_key`` reads them).
    """
    unpaged = EventQuery(
        query.where, query.start, query.end, max_seq=query.max_seq, after_seq=query.after_seq
    )
    where = where_sql(tenant_id, unpaged, dialect)
    ph = dialect.typed.placeholder
    located = locate(field)
    if located.column is not None:
        column = located.column
        sql = (
            f"SELECT {column}, count(*) AS n FROM {dialect.events_from(where.sql)}"  # noqa: S608
            f" WHERE {where.sql} AND {column} IS NOT NULL"
            f" GROUP BY {column} ORDER BY n DESC, {column} LIMIT {ph}"
        )
        return SqlFragment(sql, (*where.params, limit)), True
    assert located.ref is not None
    keys = dialect.typed.order_key(located.ref)
    listed = ", ".join(f"{k.sql} AS k{i}" for i, k in enumerate(keys))
    sql = (
        f"SELECT k0, k1, k2, k3, count(*) AS n FROM (SELECT {listed}"  # noqa: S608 - ours
        f" FROM {dialect.events_from(where.sql, listed)} WHERE {where.sql}) AS v"
        f" WHERE k0 > 0 GROUP BY k0, k1, k2, k3 ORDER BY n DESC, k0, k1, k2, k3 LIMIT {ph}"
    )
    params = (*(p for k in keys for p in k.params), *where.params, limit)
    return SqlFragment(sql, params), False
