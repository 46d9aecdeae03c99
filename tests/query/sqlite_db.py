"""A real in-memory SQLite database with the events table and the FTS5 index the search needs.

The events table comes from the shipped first migration and rows from ``storage.rows``, so the
columns are the ones the store writes; the FTS5 table is the one ``docs/search.md`` asks the
SQLite backend to keep.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import orjson

from trailkeep.model.event import NewEvent
from trailkeep.query.fulltext import search_document
from trailkeep.storage._sql import SqlFragment
from trailkeep.storage.rows import EVENT_COLUMNS, event_row
from trailkeep.storage.sqlite_schema import MIGRATIONS

__all__ = ["FTS5_TABLE_SQL", "build_database", "matching_ids"]

FTS5_TABLE_SQL = (
    "CREATE VIRTUAL TABLE events_fts USING fts5("
    "message, fields, tokenize = 'unicode61 remove_diacritics 2')"
)
_INSERT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)


def build_database(tenants: dict[str, Iterable[dict[str, Any]]]) -> sqlite3.Connection:
    """A database holding each tenant's events (``id`` key = event id, the rest = content)."""
    conn = sqlite3.connect(":memory:")
    for statement in MIGRATIONS[0][2]:
        conn.execute(statement)
    conn.execute(FTS5_TABLE_SQL)
    for tenant, events in tenants.items():
        for seq, event in enumerate(events):
            _insert(conn, tenant, seq, event)
    conn.commit()
    return conn


def _insert(conn: sqlite3.Connection, tenant: str, seq: int, event: dict[str, Any]) -> None:
    content = {key: value for key, value in event.items() if key != "id"}
    new = NewEvent(event["id"], content["timestamp"], content, orjson.dumps(content), {}, {})
    rowid = conn.execute(_INSERT, event_row(tenant, seq, new)).lastrowid
    document = search_document(content)
    conn.execute(
        "INSERT INTO events_fts (rowid, message, fields) VALUES (?, ?, ?)",
        (rowid, document.message, document.fields),
    )


def matching_ids(conn: sqlite3.Connection, tenant: str, where: SqlFragment) -> set[str]:
    """The ids of the tenant's events that meet ``where``, as a backend would ask for them."""
    sql = f"SELECT id FROM events WHERE tenant_id = ? AND {where.sql}"
    return {row[0] for row in conn.execute(sql, (tenant, *where.params))}
