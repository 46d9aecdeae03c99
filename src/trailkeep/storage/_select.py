"""Whole reads as SQL: an ``EventQuery`` → WHERE, ORDER BY and window, for either backend.

The backend passes its dialect (placeholders, JSON and full-text spelling); every value is
bound. The order is ``(timestamp, id)`` (or ``seq``), after an ``order_by`` field's key when
the query has one (``_json_sql``: a missing value sorts as the smallest).
"""

from __future__ import annotations

from datetime import datetime

from trailkeep.errors import InvalidInputError
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.storage._compile import compile_node, locate
from trailkeep.storage._dialects import Dialect
from trailkeep.storage._sql import SqlFragment

__all__ = ["count_sql", "distinct_sql", "order_sql", "select_sql", "where_sql"]


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
        # A column holds strings only (or is NOT NULL): missing first, then by value.
        return SqlFragment(
            f"ORDER BY ({column} IS NOT NULL) {direction}, {column} {direction}, {tail}", ()
        )
    if where.ref is None:
        raise InvalidInputError(f"cannot order by {'.'.join(query.order_by)}")
    # Arrays and objects tie (their JSON text differs between backends): rank, number, string.
    keys = dialect.typed.order_key(where.ref)[:3]
    listed = ", ".join(f"{k.sql} {direction}" for k in keys)
    return SqlFragment(f"ORDER BY {listed}, {tail}", tuple(p for k in keys for p in k.params))


def select_sql(tenant_id: str, query: EventQuery, dialect: Dialect, columns: str) -> SqlFragment:
    """One page: ``columns`` of the matches, in order, ``offset`` skipped, ``limit`` taken.

    With an offset, the skipped rows are walked by ``id`` alone (an index-only walk of
    ``(tenant_id, ts, id)`` when only indexed columns select), and only the page's rows are
    read from the table: skipping 500,000 rows then costs an index scan, not 500,000 row reads.
    """
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
    page = (
        f"SELECT events.id FROM {source} WHERE {where.sql} {order.sql}"  # noqa: S608 - bound
        f" LIMIT {ph} OFFSET {ph}"
    )
    sql = (
        f"SELECT {columns} FROM {dialect.events_from(order.sql)}"  # noqa: S608 - bound
        f" WHERE events.id IN ({page}) {order.sql}"
    )
    params = (*where.params, *order.params, query.limit, query.offset, *order.params)
    return SqlFragment(sql, params)


def count_sql(tenant_id: str, query: EventQuery, dialect: Dialect) -> SqlFragment:
    """The exact number of matches (limit, offset and ``after`` ignored).

    With no condition at all it is the log's size (``tree_heads``) less its pruned events
    (retention keeps their seq but no row to list), so the count is exact without walking a
    million index entries; a seq range subtracts the tombstones inside it.
    """
    ph = dialect.typed.placeholder
    if query.where is None and query.start is None and query.end is None:
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
