"""SQLite's tree and checkpoints (a mixin of ``SQLiteStore``): heads, nodes, signed sizes."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from trailkeep.errors import (
    NotFoundError,
)
from trailkeep.merkle import NodeID
from trailkeep.storage._sqlite_writer import _AppendJob, _storage_error
from trailkeep.storage.base import (
    Appended,
    StoredCheckpoint,
)
from trailkeep.storage.tree import (
    NODE_TABLES,
    TreeHead,
    TreeName,
)

__all__ = ["SQLiteTree"]

log = logging.getLogger("trailkeep.storage.sqlite")
T = TypeVar("T")

_CHECKPOINT_FIELDS = "tenant_id, size, root_hash, note, signed_at"


def _row_checkpoint(row: tuple[Any, ...]) -> StoredCheckpoint:
    return StoredCheckpoint(row[0], row[1], row[2], row[3], row[4])


class SQLiteTree:
    """``Store``'s tree heads, nodes and checkpoints."""

    if TYPE_CHECKING:

        def _read(self, fn: Callable[[sqlite3.Connection], T], *, timed: bool = False) -> T: ...

        def _submit(self, job: _AppendJob) -> Future[list[Appended]]: ...

        _writer: threading.Thread | None

        _writer_conn: sqlite3.Connection

    def tree_head(self, tenant_id: str) -> TreeHead:
        row = self._read(
            lambda c: c.execute(
                "SELECT size, frontier, pangea_frontier FROM tree_heads WHERE tenant_id = ?",
                (tenant_id,),
            ).fetchone()
        )
        if row is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return TreeHead.unpack(row[0], row[1], row[2])

    def read_nodes(
        self, tenant_id: str, ids: Sequence[NodeID], tree: TreeName = "rfc9162"
    ) -> list[bytes]:
        sql = (
            f"SELECT hash FROM {NODE_TABLES[tree]}"  # noqa: S608 - a fixed table name
            " WHERE tenant_id = ? AND level = ? AND idx = ?"
        )

        def run(conn: sqlite3.Connection) -> list[bytes]:
            out = []
            for node in ids:
                row = conn.execute(
                    sql,
                    (tenant_id, node.level, node.index),
                ).fetchone()
                if row is None or row[0] is None:
                    raise NotFoundError(f"tree node {node} of tenant {tenant_id!r} is not stored")
                out.append(bytes(row[0]))
            return out

        return self._read(run)

    def leaf_hashes(
        self, tenant_id: str, start: int, end: int, tree: TreeName = "rfc9162"
    ) -> list[bytes]:
        rows = self._read(
            lambda c: c.execute(
                f"SELECT hash FROM {NODE_TABLES[tree]}"  # noqa: S608 - a fixed table name
                " WHERE tenant_id = ? AND level = 0 AND idx >= ? AND idx < ? ORDER BY idx",
                (tenant_id, start, end),
            ).fetchall()
        )
        return [bytes(r[0]) for r in rows]

    def checkpoint_candidates(self) -> list[tuple[str, TreeHead, StoredCheckpoint | None]]:
        def run(conn: sqlite3.Connection) -> list[tuple[str, TreeHead, StoredCheckpoint | None]]:
            rows = conn.execute(
                "SELECT h.tenant_id, h.size, h.frontier,"
                " (SELECT max(size) FROM checkpoints c WHERE c.tenant_id = h.tenant_id)"
                " FROM tree_heads h"
            ).fetchall()
            out = []
            for tenant_id, size, frontier, last_size in rows:
                if last_size is not None and last_size >= size:
                    continue
                last = None
                if last_size is not None:
                    last = _row_checkpoint(
                        conn.execute(
                            f"SELECT {_CHECKPOINT_FIELDS} FROM checkpoints"  # noqa: S608
                            " WHERE tenant_id = ? AND size = ?",
                            (tenant_id, last_size),
                        ).fetchone()
                    )
                out.append((tenant_id, TreeHead.unpack(size, frontier), last))
            return out

        return self._read(run)

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> bool:
        # Through the writer queue, like every write: a second write connection would contend
        # with group commits for SQLite's lock.
        added: list[bool] = []
        values = (
            checkpoint.tenant_id,
            checkpoint.size,
            checkpoint.root_hash,
            checkpoint.note,
            checkpoint.signed_at,
        )

        def insert(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                f"INSERT OR IGNORE INTO checkpoints ({_CHECKPOINT_FIELDS})"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?)",
                values,
            )
            added.append(cur.rowcount == 1)

        if threading.current_thread() is self._writer:  # from after_commit: no queue to wait on
            try:
                insert(self._writer_conn)  # autocommit: a transaction of its own
            except sqlite3.Error as exc:
                raise _storage_error(exc) from exc
        else:
            self._submit(_AppendJob(checkpoint.tenant_id, [], before=insert)).result()
        return added[0]

    def _checkpoint(self, sql: str, params: tuple[Any, ...]) -> StoredCheckpoint | None:
        row = self._read(lambda c: c.execute(sql, params).fetchone())
        return None if row is None else _row_checkpoint(row)

    def latest_checkpoint(self, tenant_id: str) -> StoredCheckpoint | None:
        return self._checkpoint(
            f"SELECT {_CHECKPOINT_FIELDS} FROM checkpoints WHERE tenant_id = ?"  # noqa: S608
            " ORDER BY size DESC LIMIT 1",
            (tenant_id,),
        )

    def checkpoint_at(self, tenant_id: str, size: int) -> StoredCheckpoint | None:
        return self._checkpoint(
            f"SELECT {_CHECKPOINT_FIELDS} FROM checkpoints"  # noqa: S608
            " WHERE tenant_id = ? AND size = ?",
            (tenant_id, size),
        )

    def list_checkpoints(self, tenant_id: str) -> list[StoredCheckpoint]:
        rows = self._read(
            lambda c: c.execute(
                f"SELECT {_CHECKPOINT_FIELDS} FROM checkpoints"  # noqa: S608
                " WHERE tenant_id = ? ORDER BY size",
                (tenant_id,),
            ).fetchall()
        )
        return [_row_checkpoint(r) for r in rows]
