"""SQLite's retention: one small batch of expired events deleted, in the writer's transaction.

What goes is everything that holds content (the ``events`` row with its salts and filter
columns, the full-text row, the rollup counts); what stays is the tombstone in
``pruned_events`` (id and seq) and the leaf in ``tree_nodes``, so every proof still verifies.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Final

import orjson

from trailkeep.errors import TrailkeepError
from trailkeep.query.facets import DIMENSIONS
from trailkeep.storage._facets import ROLLUP_COLUMNS, rollup_counts
from trailkeep.storage._fulltext import FTS_TABLE
from trailkeep.storage._sqlite_sql import insert_many
from trailkeep.storage.base import PruneBatch

__all__ = ["CHECKPOINT_EVENTS", "STEP", "WalCheckpoints", "prune_batch"]

log = logging.getLogger("trailkeep.storage.sqlite")

_ROLLED: Final = ("ts", *DIMENSIONS.values())
#: Oldest first by the event's own time (the ``events_ts`` index walks it in this order).
_EXPIRED: Final = (
    f"SELECT row_id, seq, id, {', '.join(_ROLLED)} FROM events"  # noqa: S608 - names
    " WHERE tenant_id = ? AND ts < ? ORDER BY ts, id LIMIT ?"
)
_SUBTRACT: Final = " ON CONFLICT (tenant_id, dim, period, value) DO UPDATE SET n = n + excluded.n"
#: Rollup rows a batch emptied, looked up by the primary keys it decremented (a JSON list of
#: [dim, period, value]). Walking every value of the batch's (dim, period) prefixes instead read
#: hundreds of actor rows per hour: a fifth of a 5-event batch's time.
_DROP_ZERO: Final = (
    "DELETE FROM facet_counts WHERE tenant_id = ? AND n = 0 AND (dim, period, value) IN"
    " (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?))"
)
#: Row ids per ``IN (...)`` list, well under SQLite's bound-variable limit.
_PER_STATEMENT: Final = 500
#: Events deleted between two looks at the writer's queue. An ingest that arrives during a
#: prune batch waits for the rest of the step in flight, the batch's rollups and tombstones so
#: far, and its commit (no fsync: ``durable=False``). One event is 0.2-0.4 ms of CPU on the
#: realistic seed; the look (``queue.empty()``) is a microsecond. Steps of 25 put 10-25 ms into
#: every ingest that met one (ingest p95 1.6-2.3x idle at duty 0.25), steps of 5 still 1.2x at
#: duty 0.1 (docs/operations.md#retention).
STEP: Final = 1
#: Expired events read at a time while giving way: a batch cut short by a waiting write has
#: read few rows it did not delete.
_LOOK: Final = 50
#: Events pruned between two WAL checkpoints that the pruning thread runs itself, off the
#: writer (``WalCheckpoints``).
CHECKPOINT_EVENTS: Final = 500


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
    for one step, the rollups and tombstones of what the batch deleted, and the commit, not
    for the whole batch.
    """
    rows: list[Any] = []
    more = False
    look = _LOOK if waiting is not None else _PER_STATEMENT
    while len(rows) < limit and not more:
        selected = conn.execute(_EXPIRED, (tenant_id, cutoff, min(look, limit - len(rows))))
        chunk = selected.fetchall()
        if not chunk:
            break
        step = STEP if waiting is not None else len(chunk)
        for start in range(0, len(chunk), step):
            part = chunk[start : start + step]
            _delete(conn, [r[0] for r in part])
            rows += part
            if waiting is not None and len(rows) < limit and waiting():
                more = True
                break
    if not rows:
        return PruneBatch(0, None, None)
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
    # No write waited while it ran, nor does one wait now: the batch took idle writer time.
    uncontended = waiting is not None and not more and not waiting()
    return PruneBatch(len(rows), min(seqs), max(seqs), more=more, uncontended=uncontended)


def _delete(conn: sqlite3.Connection, row_ids: list[int]) -> None:
    """The events' rows (with their salts and filter columns) and full-text rows."""
    marks = ", ".join("?" * len(row_ids))
    conn.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid IN ({marks})", row_ids)  # noqa: S608
    conn.execute(f"DELETE FROM events WHERE row_id IN ({marks})", row_ids)  # noqa: S608


class WalCheckpoints:
    """Checkpoints the WAL from the pruning thread, on a connection of its own, every
    ``CHECKPOINT_EVENTS`` pruned events.

    A prune writes about ten WAL pages per event (each deletion touches a page of every
    index). Left to SQLite's automatic checkpoint, the commit that fills the WAL runs it on
    the writer thread — up to a second of copying and fsyncs that every ingest then waits
    for. A ``PASSIVE`` checkpoint from another connection holds no write lock: the writer
    commits meanwhile, and the WAL stays below the automatic threshold.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], wal: str | None = None) -> None:
        self._connect = connect
        self._wal = wal
        self._lock = threading.Lock()
        self._pending = 0

    def pruned(self, count: int) -> None:
        """Count a committed batch: sync the WAL file (``wal``), and checkpoint once enough
        events went since the last.

        A prune batch commits without an fsync (``durable=False``); syncing its WAL frames
        here, on the pruning thread while the writer goes on, keeps them out of the next
        ingest's fsync, which would otherwise flush them while that ingest waits. The time
        this takes counts as the batch's (``SQLiteWriter.prune``'s ``held``): an ingest's
        commit that comes meanwhile waits for the same disk.
        """
        if count and self._wal is not None:
            _sync(self._wal)
        with self._lock:
            self._pending += count
            if self._pending < CHECKPOINT_EVENTS:
                return
            self._pending = 0
            try:
                conn = self._connect()
            except TrailkeepError as exc:
                log.warning("no connection for a WAL checkpoint: %s", exc.message)
                return
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                log.warning("a WAL checkpoint after pruning failed: %s", exc)
            finally:
                conn.close()


def _sync(path: str) -> None:
    """Flush a file's data (another descriptor's writes too: the page cache is the file's).

    ``fdatasync``, as SQLite syncs its WAL: the frames overwrite a file that keeps its size,
    so only the data is flushed; ``fsync`` would also write the inode's new modification
    time through ext4's journal, a journal commit per batch that other writes to the file
    system (an ingest's WAL frames) then queue behind.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return  # no WAL (yet): nothing to sync
    except OSError as exc:
        log.warning("cannot open the WAL to sync it after pruning: %s", exc)
        return
    try:
        os.fdatasync(fd)
    except OSError as exc:
        log.warning("syncing the WAL after pruning failed: %s", exc)
    finally:
        os.close(fd)


def _subtract_rollups(
    conn: sqlite3.Connection, tenant_id: str, rows: list[dict[str, str | None]]
) -> None:
    """Take the pruned events out of the facet rollups; counts that reach zero go."""
    counts = [
        (t, dim, period, value, -n) for t, dim, period, value, n in rollup_counts(tenant_id, rows)
    ]
    insert_many(conn, "facet_counts", ROLLUP_COLUMNS, counts, _SUBTRACT)
    keys = orjson.dumps([c[1:4] for c in counts]).decode()
    conn.execute(_DROP_ZERO, (tenant_id, keys))
