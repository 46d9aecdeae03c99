"""What the PostgreSQL store and its writer share: error translation, row decoding, text rules.

Driver errors become ``trailkeep.errors`` types here and nowhere else::

    psycopg.Error
    ├── OperationalError (lost connection, restart, pool timeout,   → UnavailableError (503)
    │                     serialization failure, deadlock)
    ├── IntegrityError: unique, foreign key, exclusion violation    → ConflictError (409)
    └── anything else                                               → StorageError (500)
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson
import psycopg
from psycopg import errors as pg_errors

from trailkeep.errors import (
    ConflictError,
    QueryTimeoutError,
    StorageError,
    TrailkeepError,
    UnavailableError,
)
from trailkeep.model.event import StoredEvent
from trailkeep.storage.base import Evidence, StoredCheckpoint
from trailkeep.storage.rows import unpack_salts
from trailkeep.storage.tree import EVENT_LEAF

__all__ = [
    "CHECKPOINT_FIELDS",
    "EVENT_FIELDS",
    "EVIDENCE_FIELDS",
    "pg_row",
    "pg_text",
    "row_checkpoint",
    "row_event",
    "row_evidence",
    "translate",
]

log = logging.getLogger("trailkeep.storage.postgres")

EVENT_FIELDS: Final = f"tenant_id, seq, id, received_at, body, {EVENT_LEAF}"
EVIDENCE_FIELDS: Final = EVENT_FIELDS + ", salts, redactions"
CHECKPOINT_FIELDS: Final = "tenant_id, size, root_hash, note, signed_at"

_CONFLICTS = (
    pg_errors.UniqueViolation,
    pg_errors.ForeignKeyViolation,
    pg_errors.ExclusionViolation,
)
#: JSON can carry U+0000 (orjson writes it as this escape); PostgreSQL text cannot.
_NUL_ESCAPE: Final = b"\\u0000"


def translate(exc: BaseException, doing: str) -> TrailkeepError:
    """The ``trailkeep.errors`` type for an exception raised while ``doing`` something."""
    if isinstance(exc, TrailkeepError):
        return exc
    first_line = str(exc).strip().split("\n", 1)[0]
    if isinstance(exc, pg_errors.QueryCanceled):  # statement_timeout: before OperationalError
        return QueryTimeoutError(
            f"the query ran past the time limit (query_timeout) while {doing}; narrow it"
            " (a shorter time range, fewer terms) and retry"
        )
    if isinstance(exc, psycopg.OperationalError):
        return UnavailableError(f"PostgreSQL is unavailable ({doing}): {first_line}")
    if isinstance(exc, _CONFLICTS):
        return ConflictError(f"{doing} conflicts with stored data: {first_line}")
    log.error("PostgreSQL %s failed", doing, exc_info=exc)
    return StorageError(f"PostgreSQL {doing} failed: {first_line}")


def pg_text(value: str) -> str:
    """A client string as a text column holds it: NUL, which PostgreSQL text cannot store,
    becomes U+FFFD. Only the indexed copies change; the event body keeps the exact bytes."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def pg_row(row: tuple[Any, ...], body: bytes) -> tuple[Any, ...]:
    """An ``events`` row ready for PostgreSQL (``body`` tells cheaply whether any text has NUL)."""
    if _NUL_ESCAPE not in body:
        return row
    return tuple(pg_text(v) if type(v) is str else v for v in row)


def row_event(row: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent.from_row(row[0], row[1], row[2], row[3], row[4], row[5])


def row_evidence(row: tuple[Any, ...]) -> Evidence:
    event = row_event(row)
    redacted = {p: bytes.fromhex(h) for p, h in orjson.loads(row[7]).items()} if row[7] else {}
    return Evidence(event, unpack_salts(event.content, row[6]), redacted)


def row_checkpoint(row: tuple[Any, ...]) -> StoredCheckpoint:
    return StoredCheckpoint(row[0], row[1], row[2], row[3], row[4])
