"""SQLite's answers to the auditor (``Store.audit_*``): stored rows, nodes and rollups as they are.

A mixin of ``SQLiteStore``, kept apart so the auditor's reads never mix with the query path.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar

import orjson

from trailkeep.errors import StorageError
from trailkeep.model import _native
from trailkeep.storage._audit_chunk import AuditChunk, ChunkReader, TallySpec, vouch_rows
from trailkeep.storage._fulltext import FTS_TABLE
from trailkeep.storage.rows import QUERY_COLUMNS
from trailkeep.storage.tree import NODE_TABLES, TreeName

__all__ = ["SQLiteAudit"]

T = TypeVar("T")

#: FTS5 keeps each row's text in its shadow table ``<name>_content(id, c0, c1, ...)`` (columns
#: in declaration order: message, fields) and reads it from there; joining that table directly
#: costs a B-tree lookup instead of a virtual-table call per row. That the index itself agrees
#: with this text is FTS5's own ``integrity-check`` (``audit_fulltext_index``).
_FTS_CONTENT: Final = f"{FTS_TABLE}_content"
_ROWS: Final = (
    "SELECT e.seq, e.id, e.received_at, e.body, e.salts, t.hash, e.redactions,"  # noqa: S608 - names
    f" f.c0, f.c1, {', '.join('e.' + c for c in QUERY_COLUMNS)}"
    f" FROM events e LEFT JOIN {_FTS_CONTENT} f ON f.id = e.row_id"
    " LEFT JOIN tree_nodes t ON t.tenant_id = e.tenant_id AND t.level = 0 AND t.idx = e.seq"
    " WHERE e.tenant_id = ? AND e.seq >= ? AND e.seq < ? ORDER BY e.seq"
)

#: What ``audit_scan`` steps: ``_ROWS`` with its leaf column left NULL, and the leaves read
#: beside it in ``seq`` order (one range of the tree's primary key, merged with the rows in C,
#: instead of a primary-key lookup per row).
_SCAN: Final = (
    "SELECT e.seq, e.id, e.received_at, e.body, e.salts, NULL, e.redactions,"  # noqa: S608 - names
    f" f.c0, f.c1, {', '.join('e.' + c for c in QUERY_COLUMNS)}"
    f" FROM events e LEFT JOIN {_FTS_CONTENT} f ON f.id = e.row_id"
    " WHERE e.tenant_id = ? AND e.seq >= ? AND e.seq < ? ORDER BY e.seq"
)
#: ``_SCAN``'s rows in row-id order over the row ids ``[?2, ?3]`` (the C part takes it where it
#: holds a chunk's positions in order, ``SQLiteRows.check``), each given to the reader's own
#: aggregate ``trailkeep_rows``, which checks it inside SQLite's loop and takes the rows only
#: as far as they are the chunk's next positions; ``NOT INDEXED``: the row-id range, never the
#: tenant's index. ``_SCAN_BOUND``: the row id of a position.
_SCAN_BY_ROWID: Final = (
    "SELECT trailkeep_rows(e.seq, e.id, e.received_at, e.body, e.salts, NULL,"  # noqa: S608
    f" e.redactions, f.c0, f.c1, {', '.join('e.' + c for c in QUERY_COLUMNS)})"
    f" FROM events e NOT INDEXED LEFT JOIN {_FTS_CONTENT} f ON f.id = e.row_id"
    " WHERE e.row_id >= ?2 AND e.row_id <= ?3 AND e.tenant_id = ?1"
)
#: ``_SCAN_BY_ROWID``, ``_HASHES`` and ``_ROLLUPS`` as a compiled part older than their
#: aggregates steps them (``_native.AUDIT_AGGREGATES`` false): the same rows, one step each.
_STEPPED_BY_ROWID: Final = (
    "SELECT e.seq, e.id, e.received_at, e.body, e.salts, NULL, e.redactions,"  # noqa: S608 - names
    f" f.c0, f.c1, {', '.join('e.' + c for c in QUERY_COLUMNS)}"
    f" FROM events e NOT INDEXED LEFT JOIN {_FTS_CONTENT} f ON f.id = e.row_id"
    " WHERE e.row_id >= ?2 AND e.row_id <= ?3 AND e.tenant_id = ?1 ORDER BY e.row_id"
)
_SCAN_BOUND: Final = "SELECT row_id FROM events WHERE tenant_id = ? AND seq = ?"
_SCAN_LEAVES: Final = (
    "SELECT idx, hash FROM tree_nodes"
    " WHERE tenant_id = ? AND level = 0 AND idx >= ? AND idx < ? ORDER BY idx"
)
#: ``audit_node_hashes`` and ``audit_leaf_hashes`` during a scan, by its reader: an aggregate of
#: the range's rows (``trailkeep_hashes``, the reader's own function, which takes them in index
#: order and answers nothing unless they are each index of the range once, in order).
_HASHES: Final = tuple(
    f"SELECT trailkeep_hashes(idx, hash) FROM {NODE_TABLES[tree]}"  # noqa: S608 - a fixed table name
    " WHERE tenant_id = ? AND level = ? AND idx >= ? AND idx < ?"
    for tree in ("rfc9162", "pangea")
)
#: ``audit_rollups``'s rows as the scan's reader compares them (``audit_rollups_match``): each
#: given to its aggregate ``trailkeep_rollups``, compared inside SQLite's loop.
_ROLLUPS: Final = (
    "SELECT trailkeep_rollups(dim, period, value, n) FROM facet_counts"
    " WHERE tenant_id = ? AND n <> 0"
)
_STEPPED_HASHES: Final = tuple(
    f"SELECT hash FROM {NODE_TABLES[tree]}"  # noqa: S608 - a fixed table name
    " WHERE tenant_id = ? AND level = ? AND idx >= ? AND idx < ? ORDER BY idx"
    for tree in ("rfc9162", "pangea")
)
_STEPPED_ROLLUPS: Final = (
    "SELECT dim, period, value, n FROM facet_counts WHERE tenant_id = ? AND n <> 0"
)
#: A node (level, idx) is a leaf or a complete subtree of [0, size) iff 0 <= level <= 62 and
#: 0 <= idx < size >> level: every other one, by one index range each (an OR of them would walk
#: all of the tenant's nodes). Parameters: tenant twice, then per level (tenant, level, tenant,
#: level, size >> level).
_LEVELS: Final = range(63)
_STRAY_NODES: Final = (
    " UNION ALL ".join(  # noqa: S608 - constant text, values bound
        [
            "SELECT level, idx FROM tree_nodes WHERE tenant_id = ? AND level < 0",
            "SELECT level, idx FROM tree_nodes WHERE tenant_id = ? AND level > 62",
        ]
        + [
            "SELECT level, idx FROM tree_nodes WHERE tenant_id = ? AND level = ? AND idx < 0"
            " UNION ALL SELECT level, idx FROM tree_nodes WHERE tenant_id = ? AND level = ?"
            " AND idx >= ?"
        ]
        * len(_LEVELS)
    )
    + " ORDER BY level, idx"
)


def _seq_is_unique(conn: sqlite3.Connection) -> bool:
    """Whether ``events`` has a unique index, over all its rows, on exactly (tenant_id, seq)."""
    for _, name, unique, _origin, partial in conn.execute("PRAGMA index_list(events)"):
        if unique and not partial:
            columns = [
                row[2] for row in conn.execute("SELECT * FROM pragma_index_info(?)", (name,))
            ]
            if columns == ["tenant_id", "seq"]:
                return True
    return False


class SQLiteAudit:
    """``Store.audit_*`` for SQLite: one read transaction per call."""

    if TYPE_CHECKING:
        _path: str
        _audit_reader: tuple[int, Any] | None

        def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        def _connect(self, *, writer: bool = False) -> sqlite3.Connection: ...

        def leaf_hashes(
            self, tenant_id: str, start: int, end: int, tree: TreeName = "rfc9162"
        ) -> list[bytes]: ...

    def audit_rows(self, tenant_id: str, start: int, end: int) -> list[tuple[Any, ...]]:
        return self._read(lambda c: c.execute(_ROWS, (tenant_id, start, end)).fetchall())

    @contextmanager
    def audit_scan(self, tenant_id: str) -> Iterator[ChunkReader]:
        """Rows stepped and checked by the C part (``_fastleaf.SQLiteRows``) on a read-only
        connection of its own: the columns it compares never become Python objects. Each
        chunk is one statement, so one snapshot, as ``audit_rows`` reads it."""
        if _native.SQLiteRows is None or self._path == ":memory:":  # pragma: no cover
            yield lambda start, end, watch, tally: vouch_rows(
                self.audit_rows(tenant_id, start, end), start, end, tenant_id, watch, tally
            )
            return
        tenant_json = orjson.dumps(tenant_id).decode()
        # the row-id order is sound only while a position has one row at most
        aggregates = _native.AUDIT_AGGREGATES
        rowid_sql = _SCAN_BY_ROWID if aggregates else _STEPPED_BY_ROWID
        by_rowid = (rowid_sql, _SCAN_BOUND) if self._read(_seq_is_unique) else (None, None)
        hashes, rollups = (_HASHES, _ROLLUPS) if aggregates else (_STEPPED_HASHES, _STEPPED_ROLLUPS)
        try:
            reader = _native.SQLiteRows(
                self._path, _SCAN, _SCAN_LEAVES, *hashes, rollups, *by_rowid
            )
        except _native.SQLiteError as exc:
            raise StorageError(f"SQLite read failed: {exc}") from exc

        def read(
            start: int, end: int, watch: frozenset[int], tally: TallySpec | None
        ) -> AuditChunk:
            try:
                found = reader.check(tenant_id, start, end, tenant_json, orjson.loads, watch, tally)
            except (_native.SQLiteError, UnicodeDecodeError) as exc:
                raise StorageError(f"SQLite read failed: {exc}") from exc
            return AuditChunk(*found)

        # the tree checks read their hashes through it too, in this thread (its connection is
        # this thread's alone)
        self._audit_reader = (threading.get_ident(), reader)
        try:
            yield read
        finally:
            self._audit_reader = None
            reader.close()

    def _scan_hashes(
        self, tree: int, tenant_id: str, level: int, start: int, end: int
    ) -> bytes | None:
        """The hashes of ``[start, end)`` at ``level`` by the reader of a scan in progress, or
        None without one (in this thread)."""
        held = getattr(self, "_audit_reader", None)
        if held is None or held[0] != threading.get_ident():
            return None
        try:
            hashes: bytes = held[1].hashes(tree, tenant_id, level, start, end)
        except _native.SQLiteError as exc:
            raise StorageError(f"SQLite read failed: {exc}") from exc
        return hashes

    def audit_rollups_match(self, tenant_id: str, tally: TallySpec) -> bool | None:
        """By the reader of a scan in progress (in this thread), in C: the stored rollups are
        stepped and looked up in the C tally's expected counts, never made into a dict."""
        held = getattr(self, "_audit_reader", None)
        if held is None or held[0] != threading.get_ident() or not isinstance(tally, _native.Tally):
            return None
        try:
            return bool(held[1].rollups_match(tenant_id, tally))
        except _native.SQLiteError as exc:
            raise StorageError(f"SQLite read failed: {exc}") from exc

    def audit_nodes(
        self, tenant_id: str, level: int, start: int, end: int
    ) -> list[tuple[int, int, bytes]]:
        return self._read(
            lambda c: c.execute(
                "SELECT level, idx, hash FROM tree_nodes"
                " WHERE tenant_id = ? AND level = ? AND idx >= ? AND idx < ? ORDER BY idx",
                (tenant_id, level, start, end),
            ).fetchall()
        )

    def audit_node_hashes(self, tenant_id: str, level: int, start: int, end: int) -> bytes:
        scanned = self._scan_hashes(0, tenant_id, level, start, end)
        if scanned is not None:
            return scanned
        # the primary key makes the indexes distinct: as many 32-byte rows as indexes is all
        rows = self._read(
            lambda c: c.execute(
                "SELECT hash FROM tree_nodes WHERE tenant_id = ? AND level = ? AND idx >= ?"
                " AND idx < ? AND length(hash) = 32 ORDER BY idx",
                (tenant_id, level, start, end),
            ).fetchall()
        )
        return b"".join([r[0] for r in rows]) if len(rows) == end - start else b""

    def audit_leaf_hashes(
        self, tenant_id: str, start: int, end: int, tree: TreeName = "rfc9162"
    ) -> bytes:
        scanned = self._scan_hashes(0 if tree == "rfc9162" else 1, tenant_id, 0, start, end)
        if scanned is not None:
            return scanned
        leaves = self.leaf_hashes(tenant_id, start, end, tree)
        if len(leaves) != end - start or any(len(h) != 32 for h in leaves):
            return b""
        return b"".join(leaves)

    def audit_strays(self, tenant_id: str, size: int) -> list[tuple[int, str]]:
        # two index ranges: an OR of the two would walk the tenant's whole index
        return self._read(
            lambda c: c.execute(
                "SELECT seq, id FROM events WHERE tenant_id = ? AND seq < 0 UNION ALL"
                " SELECT seq, id FROM events WHERE tenant_id = ? AND seq >= ? ORDER BY seq",
                (tenant_id, tenant_id, size),
            ).fetchall()
        )

    def audit_stray_nodes(self, tenant_id: str, size: int) -> list[tuple[int, int]]:
        params: list[str | int] = [tenant_id, tenant_id]
        for level in _LEVELS:
            params += [tenant_id, level, tenant_id, level, size >> level]
        return self._read(lambda c: c.execute(_STRAY_NODES, params).fetchall())

    def audit_rollups(self, tenant_id: str) -> dict[tuple[str, str, str], int] | None:
        rows = self._read(
            lambda c: c.execute(
                "SELECT dim, period, value, n FROM facet_counts WHERE tenant_id = ? AND n <> 0",
                (tenant_id,),
            ).fetchall()
        )
        return {(dim, period, value): n for dim, period, value, n in rows}

    def audit_fulltext_index(self) -> str | None:
        """FTS5's own ``integrity-check``: the index against the text it holds.

        The command is an ``INSERT``, which a ``query_only`` reader may not run, so it takes a
        connection of its own; it writes nothing.
        """
        conn = self._connect()
        try:
            conn.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('integrity-check')")  # noqa: S608
        except sqlite3.OperationalError as exc:  # locked, unreadable: no answer either way
            raise StorageError(f"SQLite full-text integrity check failed: {exc}") from exc
        except sqlite3.DatabaseError as exc:  # SQLITE_CORRUPT_VTAB: the index disagrees
            return f"the full-text index does not match the text it indexes ({exc})"
        finally:
            conn.close()
        return None
