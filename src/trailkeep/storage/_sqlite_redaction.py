"""SQLite's erasure (a mixin of ``SQLiteStore``): a redaction commits with its audit record."""

from __future__ import annotations

import logging
import sqlite3
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from trailkeep.errors import (
    NotFoundError,
)
from trailkeep.model.commitments import SALT_SIZE, field_paths
from trailkeep.model.event import NewEvent
from trailkeep.query.fulltext import search_document
from trailkeep.storage._sqlite_sql import (
    ROLLUP_AT,
    adjust_rollups,
)
from trailkeep.storage._sqlite_writer import _AppendJob
from trailkeep.storage.base import (
    Appended,
    Evidence,
)
from trailkeep.storage.rows import DERIVED_COLUMNS, EVENT_COLUMNS, event_row

__all__ = ["SQLiteRedaction"]

log = logging.getLogger("trailkeep.storage.sqlite")
T = TypeVar("T")


class SQLiteRedaction:
    """``Store.redact``: the derived columns, rollups and full text, through the writer."""

    if TYPE_CHECKING:

        def _submit(self, job: _AppendJob) -> Future[list[Appended]]: ...

    def redact(
        self, tenant_id: str, event_id: str, erased: Evidence, audit: NewEvent
    ) -> Future[list[Appended]]:
        content = erased.event.content
        row = event_row(tenant_id, 0, _redacted_event(event_id, content, erased.salts))
        derived = dict(zip(EVENT_COLUMNS, row, strict=True))
        assignments = ", ".join(f"{c} = ?" for c in DERIVED_COLUMNS)
        redactions = orjson.dumps({p: c.hex() for p, c in sorted(erased.redacted.items())})
        params = (*(derived[c] for c in DERIVED_COLUMNS), redactions, event_id, tenant_id)
        sql = f"UPDATE events SET {assignments}, redactions = ? WHERE id = ? AND tenant_id = ?"  # noqa: S608

        text = search_document(content)

        columns = ", ".join(ROLLUP_AT)
        before_sql = f"SELECT {columns} FROM events WHERE id = ? AND tenant_id = ?"  # noqa: S608

        def update(conn: sqlite3.Connection) -> None:
            old = conn.execute(before_sql, (event_id, tenant_id)).fetchone()
            if old is None or conn.execute(sql, params).rowcount == 0:
                raise NotFoundError(f"no event {event_id!r} in this tenant")
            adjust_rollups(conn, tenant_id, dict(zip(ROLLUP_AT, old, strict=True)), derived)
            conn.execute(
                "UPDATE events_fts SET message = ?, fields = ? WHERE rowid ="
                " (SELECT row_id FROM events WHERE id = ? AND tenant_id = ?)",
                (text.message, text.fields, event_id, tenant_id),
            )

        return self._submit(_AppendJob(tenant_id, [audit], before=update))


def _redacted_event(event_id: str, content: dict[str, Any], salts: dict[str, bytes]) -> NewEvent:
    """A ``NewEvent`` carrying redacted content, only to reuse the row mapping."""
    # Redacted paths keep their place in the packed salts as zeros (see rows.pack_salts).
    aligned = {p: salts.get(p, bytes(SALT_SIZE)) for p in field_paths(content)}
    return NewEvent(event_id, "", content, orjson.dumps(content), aligned, {})
