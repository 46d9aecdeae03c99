"""SQLite's event reads: events, evidence and pruned events (a mixin of ``SQLiteStore``)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from trailkeep.errors import (
    NotFoundError,
)
from trailkeep.model.event import StoredEvent
from trailkeep.query.facets import FacetCounts
from trailkeep.query.filters import EventQuery
from trailkeep.storage._compile import STORE_DIALECTS
from trailkeep.storage._json_sql import from_key
from trailkeep.storage._select import count_sql, distinct_sql, select_sql
from trailkeep.storage._sqlite_sql import (
    sqlite_facets,
)
from trailkeep.storage.base import (
    Evidence,
    Page,
    PrunedEvent,
)
from trailkeep.storage.rows import unpack_salts
from trailkeep.storage.tree import (
    EVENT_LEAF,
)

__all__ = ["SQLiteReads"]

log = logging.getLogger("trailkeep.storage.sqlite")
T = TypeVar("T")

_EVENT_FIELDS = f"tenant_id, seq, id, received_at, body, {EVENT_LEAF}"


_EVIDENCE_FIELDS = _EVENT_FIELDS + ", salts, redactions"


_PRUNED = (
    "SELECT p.tenant_id, p.seq, p.id, t.hash, p.pruned_at FROM pruned_events p"
    " LEFT JOIN tree_nodes t ON t.tenant_id = p.tenant_id AND t.level = 0 AND t.idx = p.seq"
)


_DIALECT = STORE_DIALECTS["sqlite"]


def _row_event(row: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent.from_row(row[0], row[1], row[2], row[3], row[4], row[5])


def _row_evidence(row: tuple[Any, ...]) -> Evidence:
    event = _row_event(row)
    redacted = {p: bytes.fromhex(h) for p, h in orjson.loads(row[7]).items()} if row[7] else {}
    return Evidence(event, unpack_salts(event.content, row[6]), redacted)


def _row_pruned(row: tuple[Any, ...]) -> PrunedEvent:
    return PrunedEvent(row[0], row[1], row[2], None if row[3] is None else bytes(row[3]), row[4])


class SQLiteReads:
    """``Store`` reads of events, evidence and tombstones: one read transaction each."""

    if TYPE_CHECKING:

        def _read(self, fn: Callable[[sqlite3.Connection], T], *, timed: bool = False) -> T: ...

    def get_event(self, tenant_id: str, event_id: str) -> StoredEvent | None:
        row = self._read(
            lambda c: c.execute(
                f"SELECT {_EVENT_FIELDS} FROM events WHERE id = ? AND tenant_id = ?",  # noqa: S608
                (event_id, tenant_id),
            ).fetchone()
        )
        return None if row is None else _row_event(row)

    def list_events(self, tenant_id: str, query: EventQuery) -> Page:
        sql = select_sql(tenant_id, query, _DIALECT, _EVENT_FIELDS)

        def run(conn: sqlite3.Connection) -> Page:
            size_row = conn.execute(
                "SELECT size FROM tree_heads WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()
            rows = conn.execute(sql.sql, sql.params).fetchall()
            return Page([_row_event(r) for r in rows], size_row[0] if size_row else 0)

        return self._read(run, timed=True)

    def select(self, tenant_id: str, query: EventQuery) -> list[StoredEvent]:
        sql = select_sql(tenant_id, query, _DIALECT, _EVENT_FIELDS)
        rows = self._read(lambda conn: conn.execute(sql.sql, sql.params).fetchall(), timed=True)
        return [_row_event(r) for r in rows]

    def count(self, tenant_id: str, query: EventQuery) -> int:
        sql = count_sql(tenant_id, query, _DIALECT)
        row = self._read(lambda conn: conn.execute(sql.sql, sql.params).fetchone(), timed=True)
        return 0 if row is None else int(row[0])

    def distinct(
        self, tenant_id: str, field: tuple[str, ...], query: EventQuery, limit: int
    ) -> list[tuple[object, int]]:
        sql, plain = distinct_sql(tenant_id, field, query, _DIALECT, limit)
        rows = self._read(lambda conn: conn.execute(sql.sql, sql.params).fetchall(), timed=True)
        if plain:
            return [(r[0], r[1]) for r in rows]
        return [(from_key(r[0], r[1], r[2], r[3]), r[4]) for r in rows]

    def facets(self, tenant_id: str, query: EventQuery, top: int) -> FacetCounts:
        return self._read(lambda conn: sqlite_facets(conn, tenant_id, query, top), timed=True)

    def log_size(self, tenant_id: str) -> int:
        row = self._read(
            lambda c: c.execute(
                "SELECT size FROM tree_heads WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()
        )
        if row is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return int(row[0])

    def get_evidence(self, tenant_id: str, event_id: str) -> Evidence | None:
        row = self._read(
            lambda c: c.execute(
                f"SELECT {_EVIDENCE_FIELDS} FROM events WHERE id = ? AND tenant_id = ?",  # noqa: S608
                (event_id, tenant_id),
            ).fetchone()
        )
        return None if row is None else _row_evidence(row)

    def scan_evidence(self, tenant_id: str, start: int, end: int) -> list[Evidence]:
        rows = self._read(
            lambda c: c.execute(
                f"SELECT {_EVIDENCE_FIELDS} FROM events"  # noqa: S608
                " WHERE tenant_id = ? AND seq >= ? AND seq < ? ORDER BY seq",
                (tenant_id, start, end),
            ).fetchall()
        )
        return [_row_evidence(r) for r in rows]

    def get_pruned(self, tenant_id: str, event_id: str) -> PrunedEvent | None:
        row = self._read(
            lambda c: c.execute(
                f"{_PRUNED} WHERE p.id = ? AND p.tenant_id = ?", (event_id, tenant_id)
            ).fetchone()
        )
        return None if row is None else _row_pruned(row)

    def scan_pruned(self, tenant_id: str, start: int, end: int) -> list[PrunedEvent]:
        rows = self._read(
            lambda c: c.execute(
                f"{_PRUNED} WHERE p.tenant_id = ? AND p.seq >= ? AND p.seq < ? ORDER BY p.seq",
                (tenant_id, start, end),
            ).fetchall()
        )
        return [_row_pruned(r) for r in rows]
