"""The SQLite schema, as ordered migrations; each runs in its own transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from trailkeep.storage._pangea_backfill import sqlite_backfill

__all__ = ["METADATA_COLUMNS", "MIGRATIONS"]

#: The ``metadata`` keys migration 7 indexes: the benchmark's ``model`` and the keys the vendor
#: dialects filter on (Agilicus, AxonFlow, Kubiya, Wasabi).
_INDEXED_METADATA: Final = (
    "model",
    "org_id",
    "category_name",
    "group_id",
    "token_id",
    "decision_id",
    "override_id",
    "policy_name",
    "connector_id",
    "scope",
    "result",
)
#: The virtual column holding each indexed body path's value (``storage._json_sql`` reads it).
METADATA_COLUMNS: Final[dict[tuple[str, ...], str]] = {
    ("metadata", key): f"meta_{key}" for key in _INDEXED_METADATA
}


def _metadata_column_v8(key: str) -> list[str]:
    """Migration 8's column for ``metadata.<key>`` (read from ``meta_doc``) and its index.

    The value is the one migration 7's column held (``json_extract`` of the body at
    ``$."metadata"."<key>"``), computed from ``meta_doc``, the ``metadata`` object's JSON text,
    which SQLite computes once per written row for all eleven columns: the byte check for the
    quoted key then searches those few bytes instead of the whole body (an eleventh of the
    cost), and only a hit parses them. ``->`` renders a value as JSON, so a ``metadata`` that
    is a string or an array reads as one (never as text to parse) and yields NULL here.
    """
    column = f"meta_{key}"
    return [
        f"ALTER TABLE events ADD COLUMN {column} GENERATED ALWAYS AS (CASE WHEN"
        f" instr(meta_doc, '\"{key}\"') > 0 THEN meta_doc ->> '$.\"{key}\"' END) VIRTUAL",
        f"CREATE INDEX events_{column} ON events(tenant_id, {column}, ts, id)"
        f" WHERE {column} IS NOT NULL",
    ]


def _metadata_column(key: str) -> list[str]:
    """A virtual column with ``metadata.<key>`` as ``json_extract`` reads it, and its index.

    The column is computed, never stored, so it cannot disagree with the body. It parses the
    body only when the stored bytes hold the quoted key (``instr``, a third of a parse), so an
    event without the key costs the writer one byte search and no index entry (the index is
    partial). The column has no declared type, so no affinity: a JSON number stays a number
    and never equals a string.
    """
    needle = f'"{key}"'.encode().hex()
    column = f"meta_{key}"
    return [
        f"ALTER TABLE events ADD COLUMN {column} GENERATED ALWAYS AS (CASE WHEN"
        f" instr(body, X'{needle}') > 0 THEN json_extract(CAST(body AS TEXT),"
        f' \'$."metadata"."{key}"\') END) VIRTUAL',
        f"CREATE INDEX events_{column} ON events(tenant_id, {column}, ts, id)"
        f" WHERE {column} IS NOT NULL",
    ]


#: A migration step: SQL, or (rarely) a function of the connection for what SQL cannot do.
Step = str | Callable[[Any], None]

#: (version, name, statements). Append only: a shipped migration never changes.
MIGRATIONS: Final[list[tuple[int, str, list[Step]]]] = [
    (
        1,
        "tenants, keys, events, tree",
        [
            """CREATE TABLE tenants (
                id TEXT PRIMARY KEY,
                created_at TEXT NOT NULL,
                settings TEXT NOT NULL DEFAULT '{}'
            )""",
            """CREATE TABLE api_keys (
                client_id TEXT PRIMARY KEY,
                secret_hash TEXT NOT NULL,
                tenant_id TEXT REFERENCES tenants(id),
                role TEXT NOT NULL,
                name TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                revoked_at TEXT
            )""",
            "CREATE INDEX api_keys_tenant ON api_keys(tenant_id)",
            # The head of each tenant's log: its size and the compact-range frontier (the
            # hashes of the complete subtrees covering [0, size)), updated in the same
            # transaction as the events it covers.
            """CREATE TABLE tree_heads (
                tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
                size INTEGER NOT NULL,
                frontier BLOB NOT NULL
            )""",
            # row_id is an INTEGER PRIMARY KEY (the rowid itself), so it never moves, even
            # on VACUUM: the full-text index is keyed on it.
            """CREATE TABLE events (
                row_id INTEGER PRIMARY KEY,
                tenant_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                id TEXT NOT NULL,
                received_at TEXT NOT NULL,
                ts TEXT NOT NULL,
                action TEXT NOT NULL,
                category TEXT,
                outcome TEXT NOT NULL,
                actor_id TEXT,
                actor_email TEXT,
                actor_type TEXT,
                target_id TEXT,
                target_type TEXT,
                source_ip TEXT,
                client_id TEXT,
                session_id TEXT,
                request_id TEXT,
                trace_id TEXT,
                idempotency_key TEXT,
                body BLOB NOT NULL,
                salts BLOB,
                leaf_hash BLOB,
                redactions BLOB
            )""",
            "CREATE UNIQUE INDEX events_seq ON events(tenant_id, seq)",
            "CREATE UNIQUE INDEX events_id ON events(id)",
            "CREATE INDEX events_ts ON events(tenant_id, ts, id)",
            # Filter indexes end in (ts, id): a filtered page is then one ordered index walk,
            # with no sort step, whatever the cursor.
            "CREATE INDEX events_action ON events(tenant_id, action, ts, id)",
            "CREATE INDEX events_actor ON events(tenant_id, actor_id, ts, id)",
            "CREATE INDEX events_target ON events(tenant_id, target_id, ts, id)",
            "CREATE UNIQUE INDEX events_idem ON events(tenant_id, idempotency_key)"
            " WHERE idempotency_key IS NOT NULL",
            "CREATE INDEX events_session ON events(tenant_id, session_id)"
            " WHERE session_id IS NOT NULL",
            "CREATE INDEX events_request ON events(tenant_id, request_id)"
            " WHERE request_id IS NOT NULL",
            "CREATE INDEX events_trace ON events(tenant_id, trace_id) WHERE trace_id IS NOT NULL",
            # Complete subtrees above the leaves (level >= 1); leaves lived in events.leaf_hash
            # until migration 9 moved them here as level 0.
            """CREATE TABLE tree_nodes (
                tenant_id TEXT NOT NULL,
                level INTEGER NOT NULL,
                idx INTEGER NOT NULL,
                hash BLOB NOT NULL,
                PRIMARY KEY (tenant_id, level, idx)
            ) WITHOUT ROWID""",
            """CREATE TABLE checkpoints (
                tenant_id TEXT NOT NULL,
                size INTEGER NOT NULL,
                root_hash BLOB NOT NULL,
                note TEXT NOT NULL,
                signed_at TEXT NOT NULL,
                PRIMARY KEY (tenant_id, size)
            ) WITHOUT ROWID""",
        ],
    ),
    (
        2,
        "full-text index",
        [
            # Kept in step with events by the writer (same transaction), keyed by row_id.
            # Columns as trailkeep.query.fulltext.search_document produces them.
            "CREATE VIRTUAL TABLE events_fts USING fts5("
            "message, fields, tokenize = 'unicode61 remove_diacritics 2')",
        ],
    ),
    (
        3,
        "facet rollups",
        [
            # Running counts per dimension, value and day or hour, and per hour (dimension
            # '_hour'), kept by the writer with the events (trailkeep.query.facets).
            """CREATE TABLE facet_counts (
                tenant_id TEXT NOT NULL,
                dim TEXT NOT NULL,
                period TEXT NOT NULL,
                value TEXT NOT NULL,
                n INTEGER NOT NULL,
                PRIMARY KEY (tenant_id, dim, period, value)
            ) WITHOUT ROWID""",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'action', substr(ts, 1, 10), action, count(*)"
            " FROM events WHERE action IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'action', substr(ts, 1, 13), action, count(*)"
            " FROM events WHERE action IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'category', substr(ts, 1, 10), category, count(*)"
            " FROM events WHERE category IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'category', substr(ts, 1, 13), category, count(*)"
            " FROM events WHERE category IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'outcome', substr(ts, 1, 10), outcome, count(*)"
            " FROM events WHERE outcome IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'outcome', substr(ts, 1, 13), outcome, count(*)"
            " FROM events WHERE outcome IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'target.type', substr(ts, 1, 10), target_type, count(*)"
            " FROM events WHERE target_type IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'target.type', substr(ts, 1, 13), target_type, count(*)"
            " FROM events WHERE target_type IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'actor.id', substr(ts, 1, 10), actor_id, count(*)"
            " FROM events WHERE actor_id IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'actor.id', substr(ts, 1, 13), actor_id, count(*)"
            " FROM events WHERE actor_id IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " '_hour', substr(ts, 1, 13), '', count(*)"
            " FROM events GROUP BY 1, 2, 3, 4",
        ],
    ),
    (
        4,
        "covering facet indexes",
        [
            # A facet request filtered on action or outcome (or q=outcome:failure) walks one of
            # these once, grouped by every facet column in index order, so SQLite counts as it
            # walks and never sorts or touches the table (trailkeep.storage._sqlite_sql). They
            # hold every facet column, so other facet filters ride along; ts comes last, so a
            # time range is checked per entry rather than sought. Each costs the writer one
            # more index entry per event (docs/architecture.md, "Facets"). Rebuilt with ts
            # before actor_id by migration 6.
            "CREATE INDEX events_facet_action"
            " ON events(tenant_id, action, outcome, category, target_type, actor_id, ts)",
            "CREATE INDEX events_facet_outcome"
            " ON events(tenant_id, outcome, action, category, target_type, actor_id, ts)",
        ],
    ),
    (
        5,
        "recount hour rollups",
        [
            # Erasures used to move a count out of the day rollups only, leaving the hour
            # rows of category, target.type and actor.id stale: recount every dimension's
            # hour rows from the events (one pass each, as migration 3 did), which also
            # restores any a database lacks.
            "DELETE FROM facet_counts WHERE length(period) = 13 AND dim <> '_hour'",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'action', substr(ts, 1, 13), action, count(*)"
            " FROM events WHERE action IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'category', substr(ts, 1, 13), category, count(*)"
            " FROM events WHERE category IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'outcome', substr(ts, 1, 13), outcome, count(*)"
            " FROM events WHERE outcome IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'target.type', substr(ts, 1, 13), target_type, count(*)"
            " FROM events WHERE target_type IS NOT NULL GROUP BY 1, 2, 3, 4",
            "INSERT INTO facet_counts SELECT tenant_id,"
            " 'actor.id', substr(ts, 1, 13), actor_id, count(*)"
            " FROM events WHERE actor_id IS NOT NULL GROUP BY 1, 2, 3, 4",
        ],
    ),
    (
        6,
        "facet indexes with time before actor",
        [
            # Migration 4's indexes put actor_id before ts, so each event's entry landed at a
            # random place among thousands of actors' runs and every commit rewrote pages all
            # over both (ingest fell by a quarter). With ts right after the low-cardinality
            # columns, new entries append at the end of a few hundred runs; actor_id is kept
            # (the walk stays off the table) but is counted with a sort of its own.
            "DROP INDEX IF EXISTS events_facet_action",
            "DROP INDEX IF EXISTS events_facet_outcome",
            "CREATE INDEX events_facet_action"
            " ON events(tenant_id, action, outcome, category, target_type, ts, actor_id)",
            "CREATE INDEX events_facet_outcome"
            " ON events(tenant_id, outcome, action, category, target_type, ts, actor_id)",
        ],
    ),
    (
        7,
        "outcome and metadata indexes",
        [
            # An outcome filter's page (and its offset walk) in (ts, id) order without a sort:
            # the facet index on outcome puts four columns before ts.
            "CREATE INDEX events_outcome ON events(tenant_id, outcome, ts, id)",
            *(statement for key in _INDEXED_METADATA for statement in _metadata_column(key)),
        ],
    ),
    (
        8,
        "cheaper metadata columns, arrival and email indexes",
        [
            # Migration 7's columns each searched the whole body for their key, eleven byte
            # searches per written event (as costly as eleven parses): +20-25% ingest CPU.
            # Rebuilt on one shared ``meta_doc`` (the metadata object's text; see
            # _metadata_column_v8), with the same values, names and indexes. Dropping and
            # adding a VIRTUAL column rewrites no row; each index is rebuilt once.
            *(f"DROP INDEX IF EXISTS events_meta_{key}" for key in _INDEXED_METADATA),
            *(f"ALTER TABLE events DROP COLUMN meta_{key}" for key in _INDEXED_METADATA),
            "ALTER TABLE events ADD COLUMN meta_doc GENERATED ALWAYS AS"
            " (CAST(body AS TEXT) -> '$.\"metadata\"') VIRTUAL",
            *(statement for key in _INDEXED_METADATA for statement in _metadata_column_v8(key)),
            # Kubiya pages in log order bounded by arrival time: the skipped rows of a deep
            # page are then walked in this index alone (row ids included), never read.
            "CREATE INDEX events_seq_arrival ON events(tenant_id, seq, received_at)",
            # AxonFlow's search by user email (alone, or with its request type) and its total:
            # both are equalities on this index, so the page is one walk and the total counts
            # index entries.
            "CREATE INDEX events_email ON events(tenant_id, actor_email, action, ts, id)",
        ],
    ),
    (
        9,
        "tree apart from content, pruned events",
        [
            # The leaves join the interior nodes as level 0 (idx = seq), so content can be
            # deleted (retention) while every proof still has its leaf. The table holds the
            # RFC 9162 tree; another hasher's tree (Pangea's, DESIGN section 3) gets a table of
            # its own of the same shape, so this data never migrates again.
            "INSERT OR IGNORE INTO tree_nodes (tenant_id, level, idx, hash)"
            " SELECT tenant_id, 0, seq, leaf_hash FROM events WHERE leaf_hash IS NOT NULL",
            "ALTER TABLE events DROP COLUMN leaf_hash",
            # A pruned event's tombstone: its events row (content, salts, filter columns,
            # full-text row, rollup counts) is gone; its id and seq stay here, its leaf in
            # tree_nodes.
            """CREATE TABLE pruned_events (
                tenant_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                id TEXT NOT NULL,
                pruned_at TEXT NOT NULL,
                PRIMARY KEY (tenant_id, seq)
            ) WITHOUT ROWID""",
            "CREATE UNIQUE INDEX pruned_events_id ON pruned_events(id)",
            # How many of the log's positions are pruned: an unconditioned count is then
            # size - pruned, still without walking the events.
            "ALTER TABLE tree_heads ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0",
        ],
    ),
    (
        10,
        "key expiry and last use",
        [
            # Both fixed-width RFC 3339 text, compared as text; null: never expires / unused.
            "ALTER TABLE api_keys ADD COLUMN expires_at TEXT",
            "ALTER TABLE api_keys ADD COLUMN last_used_at TEXT",
        ],
    ),
    (
        11,
        "Pangea's tree",
        [
            # The second tree over each tenant's sequence (DESIGN section 3): leaves are the
            # SHA-256 of each event's Pangea envelope (trailkeep.model.pangea), nodes
            # SHA-256(left || right), same shape as tree_nodes. The writer appends it in the
            # same transaction as the RFC 9162 tree; its frontier sits beside that tree's on
            # the tenant's head row, so the one lock that sequences a tenant covers both.
            """CREATE TABLE pangea_tree_nodes (
                tenant_id TEXT NOT NULL,
                level INTEGER NOT NULL,
                idx INTEGER NOT NULL,
                hash BLOB NOT NULL,
                PRIMARY KEY (tenant_id, level, idx)
            ) WITHOUT ROWID""",
            "ALTER TABLE tree_heads ADD COLUMN pangea_frontier BLOB NOT NULL DEFAULT x''",
            # Logs written before this migration: their tree, built from their events.
            sqlite_backfill,
        ],
    ),
    (
        12,
        "arrival index",
        [
            # The events outside a Kubiya page's arrival bounds, found by index ranges, so that
            # a deep page in log order is placed by arithmetic on seq (storage._select). Partial
            # on a term only that statement spells (``seq >= 0``, true of every event), so no
            # other read is planned on it: a page in log order bounded by arrival would take
            # its range and then sort every event in it.
            "CREATE INDEX events_arrival ON events(tenant_id, received_at, seq) WHERE seq >= 0",
        ],
    ),
    (
        13,
        "dialect notes",
        [
            # What a dialect hands a client to come back with (Pangea's search ids and export
            # request ids): kept in the database so every server process answers them. Small,
            # expiring, and no part of the log (nothing here is committed or proven).
            """CREATE TABLE dialect_notes (
                tenant_id TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                expires_at TEXT NOT NULL,
                PRIMARY KEY (tenant_id, key)
            ) WITHOUT ROWID""",
            "CREATE INDEX dialect_notes_expiry ON dialect_notes(expires_at)",
        ],
    ),
]
