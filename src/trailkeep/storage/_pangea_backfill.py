"""Building Pangea's tree over logs written before it existed (the migration's Python step).

The rules are here once; each backend only says how to read a range of positions and write
rows (``SQLite migration 11``, ``PostgreSQL migration 6``). It runs inside the migration's
transaction, so a log is never seen with one tree and not the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import orjson

from trailkeep.merkle import PANGEA_LEGACY, CompactRange
from trailkeep.model.pangea import pangea_leaf, pruned_leaf

__all__ = ["BATCH", "Positions", "backfill_tenant", "postgres_backfill", "sqlite_backfill"]

#: Positions read and appended per step, so memory stays bounded whatever the log's size.
BATCH: Final = 5_000

#: ``(events, pruned)`` of ``[start, end)``: ``(seq, received_at, body)`` and ``(seq, id)`` rows.
Positions = tuple[Sequence[tuple[int, str, bytes]], Sequence[tuple[int, str]]]


def _leaves(start: int, end: int, positions: Positions) -> list[bytes]:
    events, pruned = positions
    by_seq: dict[int, bytes] = {
        seq: pangea_leaf(orjson.loads(body), received_at) for seq, received_at, body in events
    }
    for seq, event_id in pruned:
        by_seq.setdefault(seq, pruned_leaf(event_id))
    missing = [seq for seq in range(start, end) if seq not in by_seq]
    if missing:
        raise RuntimeError(f"positions {missing[:5]} have neither an event nor a tombstone")
    return [by_seq[seq] for seq in range(start, end)]


def backfill_tenant(
    tenant_id: str,
    size: int,
    read: Callable[[str, int, int], Positions],
    write: Callable[[list[tuple[str, int, int, bytes]]], None],
) -> bytes:
    """Append every position of a tenant's log to a fresh Pangea tree; return its frontier.

    Args:
        read: the events and tombstones of ``[start, end)`` of the tenant's log.
        write: inserts ``pangea_tree_nodes`` rows ``(tenant_id, level, idx, hash)``.
    """
    compact = CompactRange(PANGEA_LEGACY)
    for start in range(0, size, BATCH):
        end = min(size, start + BATCH)
        leaves = _leaves(start, end, read(tenant_id, start, end))
        nodes = compact.extend(leaves)
        rows = [(tenant_id, 0, start + i, leaf) for i, leaf in enumerate(leaves)]
        rows.extend((tenant_id, level, idx, h) for level, idx, h in nodes)
        write(rows)
    return b"".join(compact.hashes)


def _driver(conn: Any, mark: str, copy_rows: Callable[[list[Any]], None]) -> None:
    """Backfill every tenant through ``conn`` (a DB-API connection whose placeholder is
    ``mark``), storing each tenant's frontier in ``tree_heads.pangea_frontier``."""
    p = mark
    heads = conn.execute("SELECT tenant_id, size FROM tree_heads ORDER BY tenant_id").fetchall()

    def read(tenant_id: str, start: int, end: int) -> Positions:
        window = (tenant_id, start, end)
        events = conn.execute(
            "SELECT seq, received_at, body FROM events"  # noqa: S608 - placeholder only
            f" WHERE tenant_id = {p} AND seq >= {p} AND seq < {p} ORDER BY seq",
            window,
        ).fetchall()
        pruned = conn.execute(
            "SELECT seq, id FROM pruned_events"  # noqa: S608 - placeholder only
            f" WHERE tenant_id = {p} AND seq >= {p} AND seq < {p}",
            window,
        ).fetchall()
        return [(s, r, bytes(b)) for s, r, b in events], pruned

    for tenant_id, size in heads:
        frontier = backfill_tenant(tenant_id, size, read, copy_rows)
        conn.execute(
            f"UPDATE tree_heads SET pangea_frontier = {p} WHERE tenant_id = {p}",  # noqa: S608
            (frontier, tenant_id),
        )


def sqlite_backfill(conn: Any) -> None:
    """SQLite migration 11's step: Pangea's tree for every existing log."""

    def write(rows: list[Any]) -> None:
        conn.executemany("INSERT INTO pangea_tree_nodes VALUES (?, ?, ?, ?)", rows)

    _driver(conn, "?", write)


def postgres_backfill(conn: Any) -> None:
    """PostgreSQL migration 6's step: Pangea's tree for every existing log."""

    def write(rows: list[Any]) -> None:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO pangea_tree_nodes VALUES (%s, %s, %s, %s)", rows)

    _driver(conn, "%s", write)
