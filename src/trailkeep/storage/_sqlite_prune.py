"""SQLite's retention: one small batch of expired events deleted, in the writer's transaction.

What goes is everything that holds content (the ``events`` row with its salts and filter
columns, the full-text row, the rollup counts); what stays is the tombstone in
``pruned_events`` (id and seq) and the leaf in ``tree_nodes``, so every proof still verifies.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Final

import orjson

from trailkeep.query.facets import DIMENSIONS
from trailkeep.storage._facets import ROLLUP_COLUMNS, rollup_counts
from trailkeep.storage._fulltext import FTS_TABLE
from trailkeep.storage._sqlite_sql import insert_many
from trailkeep.storage.base import PruneBatch

__all__ = ["prune_batch"]

_ROLLED: Final = ("ts", *DIMENSIONS.values())
#: Oldest first by the event's own time (the ``events_ts`` index walks it in this order).
_EXPIRED: Final = (
    f"SELECT row_id, seq, id, {', '.join(_ROLLED)} FROM events"  # noqa: S608 - names
    " WHERE tenant_id = ? AND ts < ? ORDER BY ts, id LIMIT ?"
)
_SUBTRACT: Final = " ON CONFLICT (tenant_id, dim, period, value) DO UPDATE SET n = n + excluded.n"
#: Rollup rows a batch emptied: its (dim, period) prefixes of the primary key, walked once.
_DROP_ZERO: Final = (
    "DELETE FROM facet_counts WHERE tenant_id = ? AND dim IN (SELECT value FROM json_each(?))"
    " AND period IN (SELECT value FROM json_each(?)) AND n = 0"
)
#: Row ids per ``IN (...)`` list, well under SQLite's bound-variable limit.
_PER_STATEMENT: Final = 500
#: Events deleted between two looks at the writer's queue: the most an ingest that arrives
#: during a prune batch waits for, besides the commit (a few milliseconds).
STEP: Final = 25


def prune_batch(
    conn: sqlite3.Connection,
    tenant_id: str,
    cutoff: str,
    limit: int,
    pruned_at: str,
    waiting: Callable[[], bool] | None = None,
) -> PruneBatch:
    """Delete up to ``limit`` events of the tenant whose ``timestamp`` is before ``cutoff``
    (oldest first), keeping their tombstones and leaves; call it inside a write transaction.

    With ``waiting``, the events go ``STEP`` at a time, and the batch ends early (``more``)
    as soon as ``waiting()`` says another write waits for the writer: an ingest then waits
    for one step and the commit, not for the whole batch.
    """
    selected = conn.execute(_EXPIRED, (tenant_id, cutoff, limit)).fetchall()
    if not selected:
        return PruneBatch(0, None, None)
    rows: list[Any] = []
    step = STEP if waiting is not None else _PER_STATEMENT
    for start in range(0, len(selected), step):
        chunk = selected[start : start + step]
        row_ids = [r[0] for r in chunk]
        marks = ", ".join("?" * len(row_ids))
        conn.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid IN ({marks})", row_ids)  # noqa: S608
        conn.execute(f"DELETE FROM events WHERE row_id IN ({marks})", row_ids)  # noqa: S608
        rows += chunk
        if waiting is not None and len(rows) < len(selected) and waiting():
            break
    _subtract_rollups(conn, tenant_id, [dict(zip(_ROLLED, r[3:], strict=True)) for r in rows])
    insert_many(
        conn,
        "pruned_events",
        ("tenant_id", "seq", "id", "pruned_at"),
        [(tenant_id, r[1], r[2], pruned_at) for r in rows],
    )
    conn.execute(
        "UPDATE tree_heads SET pruned = pruned + ? WHERE tenant_id = ?", (len(rows), tenant_id)
    )
    seqs = [r[1] for r in rows]
    return PruneBatch(len(rows), min(seqs), max(seqs), more=len(rows) < len(selected))


def _subtract_rollups(
    conn: sqlite3.Connection, tenant_id: str, rows: list[dict[str, str | None]]
) -> None:
    """Take the pruned events out of the facet rollups; counts that reach zero go."""
    counts = [
        (t, dim, period, value, -n) for t, dim, period, value, n in rollup_counts(tenant_id, rows)
    ]
    insert_many(conn, "facet_counts", ROLLUP_COLUMNS, counts, _SUBTRACT)
    dims = orjson.dumps(sorted({c[1] for c in counts})).decode()
    periods = orjson.dumps(sorted({c[2] for c in counts})).decode()
    conn.execute(_DROP_ZERO, (tenant_id, dims, periods))
