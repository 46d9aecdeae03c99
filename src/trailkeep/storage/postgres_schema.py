"""The PostgreSQL schema, as ordered migrations; each runs in its own transaction.

It mirrors ``sqlite_schema.py`` table for table and index for index. Text columns use the
``"C"`` collation so that ordering and comparisons are bytewise, as in SQLite: timestamps are
fixed-width strings, so text order is time order whatever the database's locale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from trailkeep.storage._pangea_backfill import postgres_backfill
from trailkeep.storage.sqlite_schema import METADATA_COLUMNS

__all__ = [
    "METADATA_KEYS",
    "MIGRATIONS",
    "MIGRATION_LOCK",
    "metadata_column",
    "metadata_guard",
    "metadata_value",
]

#: The ``metadata`` keys migration 3 indexes: the same as SQLite's ``METADATA_COLUMNS``.
METADATA_KEYS: Final = frozenset(key for _, key in METADATA_COLUMNS)


def metadata_value(key: str) -> str:
    """The indexed expression of ``metadata.<key>`` as jsonb (NULL when missing); a query must
    spell it exactly so for the planner to use the index. ``key`` is one of ours, never input."""
    return f"(trailkeep_json(body) -> 'metadata' -> '{key}')"


def metadata_guard(key: str, *, paramstyle: bool = False) -> str:
    """The partial index's condition: the stored bytes hold the quoted key (orjson writes every
    body and never escapes a letter or ``_``), so an event without it costs the writer a byte
    match, no parse and no index entry. A query ANDs it in, as the index requires, with
    ``paramstyle`` doubling ``%`` for psycopg. ``LIKE`` on bytea costs a fifth of ``position``
    (0.7 against 3.3 µs a body); its ``_`` wildcard only widens the necessary condition."""
    percent = "%%" if paramstyle else "%"
    return f"body LIKE '{percent}{json.dumps(key)}{percent}'::bytea"


def metadata_column(key: str) -> str:
    """Migration 9's stored column of ``metadata.<key>``: ``metadata_value(key)`` (jsonb, NULL
    when missing), computed by the server from the body as each row is written or updated."""
    return f"meta_{key}"


def _metadata_columns() -> str:
    """Migration 9: every indexed key's stored column, added in one statement (one rewrite)."""
    return "ALTER TABLE events " + ", ".join(
        f"ADD COLUMN {metadata_column(key)} jsonb GENERATED ALWAYS AS"
        f" (CASE WHEN {metadata_guard(key)} THEN {metadata_value(key)} END) STORED"
        for key in sorted(METADATA_KEYS)
    )


def _metadata_column_index(key: str) -> list[str]:
    """Migration 9: the key's index over its column in place of migration 3's expression."""
    column = metadata_column(key)
    return [
        f"DROP INDEX events_meta_{key}",
        f"CREATE INDEX events_meta_{key} ON events (tenant_id, {column}, ts, id)"
        f" WHERE {column} IS NOT NULL",
    ]


def _metadata_index(key: str) -> str:
    return (
        f"CREATE INDEX events_meta_{key} ON events (tenant_id, {metadata_value(key)}, ts, id)"
        f" WHERE {metadata_guard(key)}"
    )


#: The ``pg_advisory_xact_lock`` key every process takes while it migrates, so that two
#: servers starting at once apply each migration exactly once ("trailkeep" in ASCII, cut).
MIGRATION_LOCK: Final = 0x747261696C6B65

#: A migration step: SQL, or (rarely) a function of the connection for what SQL cannot do.
Step = str | Callable[[Any], None]

#: (version, name, statements). Append only: a shipped migration never changes.
MIGRATIONS: Final[list[tuple[int, str, list[Step]]]] = [
    (
        1,
        "tenants, keys, events, tree",
        [
            """CREATE TABLE tenants (
                id TEXT COLLATE "C" PRIMARY KEY,
                created_at TEXT COLLATE "C" NOT NULL,
                settings TEXT NOT NULL DEFAULT '{}'
            )""",
            """CREATE TABLE api_keys (
                client_id TEXT COLLATE "C" PRIMARY KEY,
                secret_hash TEXT NOT NULL,
                tenant_id TEXT COLLATE "C" REFERENCES tenants(id),
                role TEXT NOT NULL,
                name TEXT NOT NULL DEFAULT '',
                created_at TEXT COLLATE "C" NOT NULL,
                revoked_at TEXT COLLATE "C"
            )""",
            "CREATE INDEX api_keys_tenant ON api_keys(tenant_id)",
            # The head of each tenant's log: its size and the compact-range frontier. Writers
            # lock this row (SELECT ... FOR UPDATE) for the whole transaction that appends to
            # the tenant, which is what serializes sequencing across server processes.
            """CREATE TABLE tree_heads (
                tenant_id TEXT COLLATE "C" PRIMARY KEY REFERENCES tenants(id),
                size BIGINT NOT NULL,
                frontier BYTEA NOT NULL
            )""",
            """CREATE TABLE events (
                tenant_id TEXT COLLATE "C" NOT NULL,
                seq BIGINT NOT NULL,
                id TEXT COLLATE "C" NOT NULL,
                received_at TEXT COLLATE "C" NOT NULL,
                ts TEXT COLLATE "C" NOT NULL,
                action TEXT COLLATE "C" NOT NULL,
                category TEXT COLLATE "C",
                outcome TEXT COLLATE "C" NOT NULL,
                actor_id TEXT COLLATE "C",
                actor_email TEXT COLLATE "C",
                actor_type TEXT COLLATE "C",
                target_id TEXT COLLATE "C",
                target_type TEXT COLLATE "C",
                source_ip TEXT COLLATE "C",
                client_id TEXT COLLATE "C",
                session_id TEXT COLLATE "C",
                request_id TEXT COLLATE "C",
                trace_id TEXT COLLATE "C",
                idempotency_key TEXT COLLATE "C",
                body BYTEA NOT NULL,
                salts BYTEA,
                leaf_hash BYTEA,
                redactions BYTEA,
                CONSTRAINT events_seq PRIMARY KEY (tenant_id, seq)
            )""",
            "CREATE UNIQUE INDEX events_id ON events(id)",
            "CREATE INDEX events_ts ON events(tenant_id, ts, id)",
            # Filter indexes end in (ts, id), so a filtered page is one ordered index walk.
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
            # until migration 4 moved them here as level 0.
            """CREATE TABLE tree_nodes (
                tenant_id TEXT COLLATE "C" NOT NULL,
                level SMALLINT NOT NULL,
                idx BIGINT NOT NULL,
                hash BYTEA NOT NULL,
                PRIMARY KEY (tenant_id, level, idx)
            )""",
            """CREATE TABLE checkpoints (
                tenant_id TEXT COLLATE "C" NOT NULL,
                size BIGINT NOT NULL,
                root_hash BYTEA NOT NULL,
                note TEXT NOT NULL,
                signed_at TEXT COLLATE "C" NOT NULL,
                PRIMARY KEY (tenant_id, size)
            )""",
        ],
    ),
    (
        2,
        "full-text index",
        [
            # The text of trailkeep.query.fulltext.search_document, written by the writer with
            # the event and rewritten by redaction; the vector is computed by the database.
            # Weights and configuration as trailkeep.storage._fulltext.TsVector reads them.
            """ALTER TABLE events
                ADD COLUMN search_message TEXT,
                ADD COLUMN search_fields TEXT,
                ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('simple'::regconfig, coalesce(search_message, '')), 'A')
                    || setweight(to_tsvector('simple'::regconfig, coalesce(search_fields, '')), 'B')
                ) STORED""",
            "CREATE INDEX events_search ON events USING gin (search_vector)",
        ],
    ),
    (
        3,
        "metadata expression indexes, arrival, email and outcome indexes",
        [
            # The body as jsonb, declared IMMUTABLE so an index may hold an expression of it:
            # convert_from is only STABLE (it looks the conversion up in the catalog), but its
            # result depends on nothing but the bytes in a given database, whose encoding never
            # changes. (An erasure writes a new body, and the index entries with it.)
            "CREATE FUNCTION trailkeep_json(body bytea) RETURNS jsonb"
            " LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE"
            " AS $$ SELECT convert_from(body, 'UTF8')::jsonb $$",
            # As SQLite's meta_<key> columns (migrations 7 and 8): metadata.model and the keys
            # the vendor dialects filter on, each a partial expression index ending in (ts, id).
            *(_metadata_index(key) for key in sorted(METADATA_KEYS)),
            # As SQLite's migration 8: Kubiya's arrival-bounded log order, AxonFlow's user email
            # with its request type.
            "CREATE INDEX events_seq_arrival ON events(tenant_id, seq, received_at)",
            "CREATE INDEX events_email ON events(tenant_id, actor_email, action, ts, id)",
            # As SQLite's migration 7: an outcome filter's page and its count.
            "CREATE INDEX events_outcome ON events(tenant_id, outcome, ts, id)",
        ],
    ),
    (
        4,
        "tree apart from content, pruned events",
        [
            # As SQLite's migration 9: leaves join the interior nodes as level 0 (idx = seq),
            # so retention can delete content and keep every proof. Another hasher's tree
            # (Pangea's) gets a table of its own of the same shape.
            "INSERT INTO tree_nodes (tenant_id, level, idx, hash)"
            " SELECT tenant_id, 0, seq, leaf_hash FROM events WHERE leaf_hash IS NOT NULL"
            " ON CONFLICT DO NOTHING",
            "ALTER TABLE events DROP COLUMN leaf_hash",
            """CREATE TABLE pruned_events (
                tenant_id TEXT COLLATE "C" NOT NULL,
                seq BIGINT NOT NULL,
                id TEXT COLLATE "C" NOT NULL,
                pruned_at TEXT COLLATE "C" NOT NULL,
                PRIMARY KEY (tenant_id, seq)
            )""",
            "CREATE UNIQUE INDEX pruned_events_id ON pruned_events(id)",
            "ALTER TABLE tree_heads ADD COLUMN pruned BIGINT NOT NULL DEFAULT 0",
        ],
    ),
    (
        5,
        "key expiry and last use",
        [
            # Both fixed-width RFC 3339 text, compared as text; null: never expires / unused.
            'ALTER TABLE api_keys ADD COLUMN expires_at TEXT COLLATE "C",'
            ' ADD COLUMN last_used_at TEXT COLLATE "C"',
        ],
    ),
    (
        6,
        "Pangea's tree",
        [
            # As SQLite's migration 11: Pangea's tree in a table of the tree's shape, its
            # frontier on the head row that writers lock, and the tree of existing logs.
            """CREATE TABLE pangea_tree_nodes (
                tenant_id TEXT COLLATE "C" NOT NULL,
                level SMALLINT NOT NULL,
                idx BIGINT NOT NULL,
                hash BYTEA NOT NULL,
                PRIMARY KEY (tenant_id, level, idx)
            )""",
            "ALTER TABLE tree_heads ADD COLUMN pangea_frontier BYTEA NOT NULL DEFAULT ''::bytea",
            postgres_backfill,
        ],
    ),
    (
        7,
        "arrival index",
        [
            # As SQLite's migration 12: the events outside a Kubiya page's arrival bounds,
            # partial on the term only that statement spells.
            "CREATE INDEX events_arrival ON events(tenant_id, received_at, seq) WHERE seq >= 0",
        ],
    ),
    (
        8,
        "dialect notes",
        [
            # As SQLite's migration 13: what a dialect hands a client to come back with.
            """CREATE TABLE dialect_notes (
                tenant_id TEXT COLLATE "C" NOT NULL,
                key TEXT COLLATE "C" NOT NULL,
                value BYTEA NOT NULL,
                expires_at TEXT COLLATE "C" NOT NULL,
                PRIMARY KEY (tenant_id, key)
            )""",
            "CREATE INDEX dialect_notes_expiry ON dialect_notes(expires_at)",
        ],
    ),
    (
        9,
        "hour totals",
        [
            # As SQLite's hour rows of facet_counts: each tenant's exact event count per hour
            # of ts (its first 13 characters) in all (dim '_hour', value ''), per action, per
            # outcome and per target.type, which deep pages and totals sum instead of walking
            # the events (storage._select). The writer adds its events' counts in their
            # transaction; every DELETE of events takes its rows' counts out, and every UPDATE
            # (a redaction, which may erase target.type) moves them (the triggers below),
            # whoever runs it. A count that reached 0 stays.
            """CREATE TABLE hour_totals (
                tenant_id TEXT COLLATE "C" NOT NULL,
                dim TEXT COLLATE "C" NOT NULL,
                value TEXT COLLATE "C" NOT NULL,
                hour TEXT COLLATE "C" NOT NULL,
                n BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, dim, value, hour)
            )""",
            """CREATE FUNCTION trailkeep_hours_gone() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE hour_totals h SET n = h.n - g.n
                FROM (SELECT tenant_id, '_hour' AS dim, '' AS value, left(ts, 13) AS hour,
                             count(*) AS n FROM gone GROUP BY 1, 4
                      UNION ALL SELECT tenant_id, 'action', action, left(ts, 13), count(*)
                      FROM gone GROUP BY 1, 3, 4
                      UNION ALL SELECT tenant_id, 'outcome', outcome, left(ts, 13), count(*)
                      FROM gone GROUP BY 1, 3, 4
                      UNION ALL SELECT tenant_id, 'target.type', target_type, left(ts, 13),
                             count(*) FROM gone WHERE target_type IS NOT NULL GROUP BY 1, 3, 4) g
                WHERE h.tenant_id = g.tenant_id AND h.dim = g.dim AND h.value = g.value
                  AND h.hour = g.hour;
                RETURN NULL;
            END $$""",
            "CREATE TRIGGER events_hours_gone AFTER DELETE ON events REFERENCING OLD TABLE AS gone"
            " FOR EACH STATEMENT EXECUTE FUNCTION trailkeep_hours_gone()",
            # Of the counted columns only target_type can change (action, outcome and the
            # timestamp cannot be redacted): a row's count moves from its old value to its new
            # one, in the hour it was counted in. Nothing else moves a count: a column altered
            # behind the server's back is what `verify database` reports, once (the totals
            # still count the content the writer saw).
            """CREATE FUNCTION trailkeep_hours_moved() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO hour_totals (tenant_id, dim, value, hour, n)
                SELECT tenant_id, 'target.type', target_type, hour, sum(d)
                FROM (SELECT g.tenant_id, unnest(ARRAY[g.target_type, c.target_type])
                             AS target_type, left(g.ts, 13) AS hour, unnest(ARRAY[-1, 1]) AS d
                      FROM gone g JOIN came c ON c.tenant_id = g.tenant_id AND c.seq = g.seq
                      WHERE g.target_type IS DISTINCT FROM c.target_type) m
                WHERE target_type IS NOT NULL
                GROUP BY 1, 3, 4 HAVING sum(d) <> 0 ORDER BY 1, 3, 4
                ON CONFLICT (tenant_id, dim, value, hour)
                DO UPDATE SET n = hour_totals.n + excluded.n;
                RETURN NULL;
            END $$""",
            "CREATE TRIGGER events_hours_moved AFTER UPDATE ON events"
            " REFERENCING OLD TABLE AS gone NEW TABLE AS came"
            " FOR EACH STATEMENT EXECUTE FUNCTION trailkeep_hours_moved()",
            # The backfill: the events already stored, counted. Appends wait for it (they
            # update tree_heads); a process of an older version, which keeps no totals, must
            # not append once this has run (upgrade every process together).
            "LOCK TABLE tree_heads IN SHARE MODE",
            "INSERT INTO hour_totals (tenant_id, dim, value, hour, n)"
            " SELECT tenant_id, '_hour', '', left(ts, 13), count(*) FROM events GROUP BY 1, 4",
            "INSERT INTO hour_totals (tenant_id, dim, value, hour, n)"
            " SELECT tenant_id, 'action', action, left(ts, 13), count(*) FROM events"
            " GROUP BY 1, 3, 4",
            "INSERT INTO hour_totals (tenant_id, dim, value, hour, n)"
            " SELECT tenant_id, 'outcome', outcome, left(ts, 13), count(*) FROM events"
            " GROUP BY 1, 3, 4",
            "INSERT INTO hour_totals (tenant_id, dim, value, hour, n)"
            " SELECT tenant_id, 'target.type', target_type, left(ts, 13), count(*) FROM events"
            " WHERE target_type IS NOT NULL GROUP BY 1, 3, 4",
            # Each indexed metadata key in a stored column, its index over the column: an
            # index over an expression of the body answers a count only by reading every
            # match's row (PostgreSQL needs the expression's columns, and the index lacks
            # the body), one over a column answers it from the index alone (an index-only
            # scan, once VACUUM has marked the pages all-visible). The same byte guard spares
            # the parse of bodies without the key. Adding them rewrites the table (and its
            # indexes) once, filling the columns of the stored events.
            _metadata_columns(),
            *(step for key in sorted(METADATA_KEYS) for step in _metadata_column_index(key)),
            # A page ordered by a column puts events without it first ascending and last
            # descending (ORDER BY actor_id ASC NULLS FIRST / DESC NULLS LAST): with NULLS
            # FIRST in the index, a walk one way or the other is that order (Wasabi's
            # order=user_id sorted every match before); equality lookups are unchanged.
            "DROP INDEX events_actor",
            "CREATE INDEX events_actor ON events(tenant_id, actor_id NULLS FIRST, ts, id)",
        ],
    ),
]
