"""The PostgreSQL backend: a connection pool, a group-commit writer, many processes per database.

Reads use a pool of autocommit connections: one statement is one snapshot, and a read that
needs several statements runs them in one ``REPEATABLE READ, READ ONLY`` transaction. Appends
and redactions go to the writer (``_postgres_writer``), which serializes each tenant's
sequencing in the database, so any number of server processes may share one database.
Administration (tenants, keys, checkpoints) runs short transactions on the writer's pool.

A lost connection or a restarted server fails the requests in flight with
``UnavailableError``; the pools check each connection before lending it and reconnect in the
background, so the store recovers by itself once the database is back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Final

import orjson
import psycopg
from psycopg import IsolationLevel
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from trailkeep.errors import ConflictError, NotFoundError
from trailkeep.merkle import NodeID
from trailkeep.model.commitments import SALT_SIZE, field_paths
from trailkeep.model.event import NewEvent, StoredEvent
from trailkeep.model.tenant import ApiKey, Role, Tenant
from trailkeep.model.timeparse import format_time, utcnow
from trailkeep.query.facets import DIMENSIONS, FacetCounts, bucket_width
from trailkeep.query.filters import EventQuery
from trailkeep.query.fulltext import search_document
from trailkeep.storage._compile import STORE_DIALECTS
from trailkeep.storage._facets import FacetSelection, dimension_sql, histogram_sql, span_sql
from trailkeep.storage._json_sql import from_key
from trailkeep.storage._postgres_audit import PostgresAudit
from trailkeep.storage._postgres_common import (
    CHECKPOINT_FIELDS,
    EVENT_FIELDS,
    EVIDENCE_FIELDS,
    pg_row,
    row_checkpoint,
    row_event,
    row_evidence,
    translate,
)
from trailkeep.storage._postgres_writer import AppendJob, Connection, GroupWriter
from trailkeep.storage._select import count_sql, distinct_sql, select_sql
from trailkeep.storage.base import (
    DEFAULT_QUERY_TIMEOUT,
    Appended,
    Evidence,
    Page,
    PruneBatch,
    PrunedEvent,
    Store,
    StoredCheckpoint,
)
from trailkeep.storage.postgres_schema import MIGRATION_LOCK, MIGRATIONS
from trailkeep.storage.rows import DERIVED_COLUMNS, EVENT_COLUMNS, event_row
from trailkeep.storage.tree import NODE_TABLES, LeafFunction, TreeHead, TreeName

__all__ = ["PostgresStore"]

_KEY_FIELDS: Final = (
    "client_id, secret_hash, tenant_id, role, created_at, name, revoked_at, expires_at,"
    " last_used_at"
)
_TENANT_FIELDS: Final = "id, created_at, settings"
_DIALECT: Final = STORE_DIALECTS["postgres"]
_CHECKPOINTS: Final = f"SELECT {CHECKPOINT_FIELDS} FROM checkpoints"  # noqa: S608
_CANDIDATES: Final = (
    "SELECT h.tenant_id, h.size, h.frontier, c.tenant_id, c.size, c.root_hash, c.note,"
    " c.signed_at FROM tree_heads h LEFT JOIN LATERAL (SELECT * FROM checkpoints"
    " WHERE tenant_id = h.tenant_id ORDER BY size DESC LIMIT 1) c ON true"
    " WHERE c.size IS NULL OR c.size < h.size ORDER BY h.tenant_id"
)
_NODES: Final = (
    "SELECT level, idx, hash FROM {} WHERE tenant_id = %s"
    " AND (level, idx) IN (SELECT * FROM unnest(%s::smallint[], %s::bigint[]))"
)


#: One batch of retention: the oldest expired rows deleted (content, salts, filter columns and
#: full text go with the row; PostgreSQL keeps no rollups), their tombstones kept.
_PRUNE: Final = (
    "WITH gone AS (DELETE FROM events WHERE tenant_id = %s AND seq IN (SELECT seq FROM events"
    " WHERE tenant_id = %s AND ts < %s ORDER BY ts, id LIMIT %s) RETURNING tenant_id, seq, id)"
    " INSERT INTO pruned_events (tenant_id, seq, id, pruned_at)"
    " SELECT tenant_id, seq, id, %s FROM gone RETURNING seq"
)
_PRUNED: Final = (
    "SELECT p.tenant_id, p.seq, p.id, t.hash, p.pruned_at FROM pruned_events p"
    " LEFT JOIN tree_nodes t ON t.tenant_id = p.tenant_id AND t.level = 0 AND t.idx = p.seq"
)


def _pruned(row: tuple[Any, ...]) -> PrunedEvent:
    return PrunedEvent(row[0], row[1], row[2], None if row[3] is None else bytes(row[3]), row[4])


def _reader_session(conn: Connection) -> None:
    """A read of several statements runs in one read-only snapshot transaction.

    Set on the connection (psycopg sends it with each BEGIN), not with ``SET``: session
    settings would outlive us on a server connection that PgBouncer hands to someone else.
    """
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(row[0], row[1], row[2], Role(row[3]), *row[4:9])


def _tenant(row: tuple[Any, ...]) -> Tenant:
    return Tenant(row[0], row[1], orjson.loads(row[2]))


class PostgresStore(PostgresAudit, Store):
    """A store in one PostgreSQL database, which several processes may share.

    Args:
        conninfo: a ``postgresql://`` URL or libpq connection string.
        leaf_function: computes an event's Merkle leaf hash once its ``seq`` is known;
            None stores events without a tree (used only to measure integrity's cost).
        read_pool_size: most connections serving reads at once.
        write_pool_size: most connections for the writer thread and administration.
        timeout: seconds a request waits for a connection before ``UnavailableError``.
        query_timeout: seconds an event read may run (``statement_timeout``, set per
            transaction) before ``QueryTimeoutError``.

    Raises:
        UnavailableError: the database cannot be reached (the message says why).
    """

    dialect = "postgres"

    def __init__(
        self,
        conninfo: str,
        *,
        leaf_function: LeafFunction | None,
        read_pool_size: int = 16,
        write_pool_size: int = 4,
        timeout: float = 3.0,
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
    ) -> None:
        params = conninfo_to_dict(conninfo)
        # The URL's own settings win; these are defaults for what it leaves out.
        defaults = {"connect_timeout": 3, "application_name": "trailkeep"}
        kwargs: dict[str, Any] = {k: v for k, v in defaults.items() if k not in params}
        kwargs["autocommit"] = True
        self._timeout = timeout
        self.query_timeout = query_timeout
        try:
            # One direct connection first, so a bad URL or a down server fails now with
            # libpq's own reason rather than with a pool timeout.
            psycopg.connect(conninfo, **kwargs).close()
        except psycopg.Error as exc:
            raise translate(exc, "connecting") from exc
        self._readers = self._pool(conninfo, kwargs, "read", read_pool_size, _reader_session)
        try:
            self._writers = self._pool(conninfo, kwargs, "write", write_pool_size, None)
        except BaseException:
            self._readers.close()
            raise
        self._writer = GroupWriter(
            self._writers, leaf_function, timeout, self._run_after_commit, self._check_append
        )

    def _pool(
        self,
        conninfo: str,
        kwargs: dict[str, Any],
        role: str,
        size: int,
        configure: Callable[[Connection], None] | None,
    ) -> ConnectionPool[Connection]:
        pool: ConnectionPool[Connection] = ConnectionPool(
            conninfo,
            kwargs=kwargs,
            min_size=1,
            max_size=size,
            open=False,
            name=f"trailkeep-{role}",
            configure=configure,
            check=ConnectionPool.check_connection,
            timeout=self._timeout,
            # Short on purpose: a pool that gives up reconnecting tries again at the next
            # request, so recovery follows demand instead of an ever longer backoff.
            reconnect_timeout=self._timeout,
        )
        try:
            pool.open(wait=True, timeout=self._timeout)
        except psycopg.Error as exc:
            pool.close()
            raise translate(exc, f"opening the {role} pool") from exc
        return pool

    # -- connections ----------------------------------------------------------------------

    @contextmanager
    def _reading(self, doing: str, timeout: float | None = None) -> Iterator[Connection]:
        try:
            with self._readers.connection(timeout=timeout) as conn:
                yield conn
        except psycopg.Error as exc:
            raise translate(exc, doing) from exc

    @contextmanager
    def _timed(self, doing: str) -> Iterator[Connection]:
        """A read transaction whose statements stop at ``query_timeout`` (``SET LOCAL``, so
        the limit never outlives it on a pooled or PgBouncer-shared connection), with JIT
        compilation off: a page planned with a costly arm it never runs (a deep page's gated
        walk) cost 2.5-4 s of compiling for a 12 ms answer at 450,000 events."""
        try:
            with self._readers.connection() as conn, conn.transaction():
                limit = f"{max(1, round(self.query_timeout * 1000))}ms"
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, true),"
                    " set_config('jit', 'off', true)",
                    (limit,),
                )
                yield conn
        except psycopg.Error as exc:
            raise translate(exc, doing) from exc

    @contextmanager
    def _admin_tx(self, doing: str) -> Iterator[Connection]:
        """A short write transaction for administration (tenants, keys, checkpoints)."""
        try:
            with self._writers.connection() as conn, conn.transaction():
                yield conn
        except psycopg.Error as exc:
            raise translate(exc, doing) from exc

    def _one(self, sql: str, params: Sequence[Any], doing: str) -> tuple[Any, ...] | None:
        with self._reading(doing) as conn:
            return conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any], doing: str) -> list[tuple[Any, ...]]:
        with self._reading(doing) as conn:
            return conn.execute(sql, params).fetchall()

    # -- lifecycle -------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply pending migrations, one transaction each, under an advisory lock.

        The lock is taken again for every migration, and the applied versions re-read under
        it, so two processes starting at once never apply one twice.
        """
        applied = []
        with self._admin_tx("migrating") as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
        for version, name, statements in MIGRATIONS:
            with self._admin_tx(f"migration {version}") as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = %s", (version,)
                ).fetchone()
                if done is not None:
                    continue
                for statement in statements:
                    if isinstance(statement, str):
                        conn.execute(statement)
                    else:
                        statement(conn)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                    (version, name, format_time(utcnow())),
                )
            applied.append(f"{version}: {name}")
        return applied

    def close(self) -> None:
        self._writer.close()
        self._readers.close()
        self._writers.close()

    def ping(self) -> None:
        with self._reading("ping", timeout=min(self._timeout, 2.0)) as conn:
            conn.execute("SELECT 1").fetchone()

    # -- tenants and keys ------------------------------------------------------------------

    def create_tenant(self, tenant: Tenant) -> None:
        try:
            with self._admin_tx("create tenant") as conn:
                conn.execute(
                    "INSERT INTO tenants (id, created_at, settings) VALUES (%s, %s, %s)",
                    (tenant.id, tenant.created_at, orjson.dumps(tenant.settings).decode()),
                )
                conn.execute(
                    "INSERT INTO tree_heads (tenant_id, size, frontier) VALUES (%s, 0, '')",
                    (tenant.id,),
                )
        except ConflictError:
            raise ConflictError(f"tenant {tenant.id!r} already exists") from None

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = self._one(
            f"SELECT {_TENANT_FIELDS} FROM tenants WHERE id = %s",  # noqa: S608
            (tenant_id,),
            "read tenant",
        )
        return None if row is None else _tenant(row)

    def list_tenants(self) -> list[Tenant]:
        rows = self._all(
            f"SELECT {_TENANT_FIELDS} FROM tenants ORDER BY id",  # noqa: S608
            (),
            "list tenants",
        )
        return [_tenant(r) for r in rows]

    def update_tenant_settings(self, tenant_id: str, settings: dict[str, Any]) -> Tenant:
        with self._admin_tx("update tenant") as conn:
            row = conn.execute(
                f"UPDATE tenants SET settings = %s WHERE id = %s RETURNING {_TENANT_FIELDS}",  # noqa: S608
                (orjson.dumps(settings).decode(), tenant_id),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return _tenant(row)

    def create_key(self, key: ApiKey) -> None:
        with self._admin_tx("create key") as conn:
            conn.execute(
                "INSERT INTO api_keys (client_id, secret_hash, tenant_id, role, name, created_at,"
                " expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    key.client_id,
                    key.secret_hash,
                    key.tenant_id,
                    key.role.value,
                    key.name,
                    key.created_at,
                    key.expires_at,
                ),
            )

    def get_key(self, client_id: str) -> ApiKey | None:
        row = self._one(
            f"SELECT {_KEY_FIELDS} FROM api_keys WHERE client_id = %s",  # noqa: S608
            (client_id,),
            "read key",
        )
        return None if row is None else _key(row)

    def list_keys(self, tenant_id: str | None) -> list[ApiKey]:
        rows = self._all(
            f"SELECT {_KEY_FIELDS} FROM api_keys WHERE tenant_id IS NOT DISTINCT FROM %s"  # noqa: S608
            " ORDER BY created_at, client_id",
            (tenant_id,),
            "list keys",
        )
        return [_key(r) for r in rows]

    def revoke_key(self, client_id: str, revoked_at: str) -> None:
        with self._admin_tx("revoke key") as conn:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE client_id = %s AND revoked_at IS NULL",
                (revoked_at, client_id),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no active key {client_id!r}")

    def touch_keys(self, used: dict[str, str]) -> None:
        with self._admin_tx("note key use") as conn, conn.cursor() as cur:
            cur.executemany(
                "UPDATE api_keys SET last_used_at = %s WHERE client_id = %s"
                " AND (last_used_at IS NULL OR last_used_at < %s)",
                [(at, client_id, at) for client_id, at in used.items()],
            )

    def put_note(self, tenant_id: str, key: str, value: bytes, expires_at: str) -> None:
        with self._admin_tx("keep a dialect note") as conn:
            conn.execute(
                "INSERT INTO dialect_notes (tenant_id, key, value, expires_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (tenant_id, key)"
                " DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at",
                (tenant_id, key, value, expires_at),
            )
            conn.execute(
                "DELETE FROM dialect_notes WHERE expires_at < %s", (format_time(utcnow()),)
            )

    def get_note(self, tenant_id: str, key: str, now: str) -> bytes | None:
        row = self._one(
            "SELECT value FROM dialect_notes WHERE tenant_id = %s AND key = %s AND expires_at > %s",
            (tenant_id, key, now),
            "read a dialect note",
        )
        return None if row is None else bytes(row[0])

    # -- events: reads ---------------------------------------------------------------------

    def get_event(self, tenant_id: str, event_id: str) -> StoredEvent | None:
        row = self._one(
            f"SELECT {EVENT_FIELDS} FROM events WHERE id = %s AND tenant_id = %s",  # noqa: S608
            (event_id, tenant_id),
            "read event",
        )
        return None if row is None else row_event(row)

    def list_events(self, tenant_id: str, query: EventQuery) -> Page:
        sql = select_sql(tenant_id, query, _DIALECT, EVENT_FIELDS)
        with self._timed("listing events") as conn:
            size_row = conn.execute(
                "SELECT size FROM tree_heads WHERE tenant_id = %s", (tenant_id,)
            ).fetchone()
            rows = conn.execute(sql.sql, sql.params).fetchall()
        return Page([row_event(r) for r in rows], size_row[0] if size_row else 0)

    def select(self, tenant_id: str, query: EventQuery) -> list[StoredEvent]:
        sql = select_sql(tenant_id, query, _DIALECT, EVENT_FIELDS)
        with self._timed("selecting events") as conn:
            rows = conn.execute(sql.sql, sql.params).fetchall()
        return [row_event(r) for r in rows]

    def count(self, tenant_id: str, query: EventQuery) -> int:
        sql = count_sql(tenant_id, query, _DIALECT)
        with self._timed("counting events") as conn:
            row = conn.execute(sql.sql, sql.params).fetchone()
        return 0 if row is None else int(row[0])

    def distinct(
        self, tenant_id: str, field: tuple[str, ...], query: EventQuery, limit: int
    ) -> list[tuple[object, int]]:
        sql, plain = distinct_sql(tenant_id, field, query, _DIALECT, limit)
        with self._timed("counting distinct values") as conn:
            rows = conn.execute(sql.sql, sql.params).fetchall()
        if plain:
            return [(r[0], r[1]) for r in rows]
        return [(from_key(r[0], r[1], r[2], r[3]), r[4]) for r in rows]

    def facets(self, tenant_id: str, query: EventQuery, top: int) -> FacetCounts:
        sel = FacetSelection.of(query)
        with self._timed("counting facets") as conn:
            span = span_sql(tenant_id, sel, _DIALECT)
            total, first, last = conn.execute(span.sql, span.params).fetchone() or (0, None, None)
            if not total:
                return FacetCounts(0, {name: [] for name in DIMENSIONS})
            dimensions = {}
            for name in DIMENSIONS:
                sql = dimension_sql(tenant_id, sel, _DIALECT, name, top)
                dimensions[name] = [(v, n) for v, n in conn.execute(sql.sql, sql.params)]
            bucket = bucket_width(first, last)
            sql = histogram_sql(tenant_id, sel, _DIALECT, bucket)
            histogram = [(b, n) for b, n in conn.execute(sql.sql, sql.params)]
        return FacetCounts(total, dimensions, bucket, histogram)

    def log_size(self, tenant_id: str) -> int:
        return self.tree_head(tenant_id).size

    # -- the tree ----------------------------------------------------------------------------

    def tree_head(self, tenant_id: str) -> TreeHead:
        row = self._one(
            "SELECT size, frontier, pangea_frontier FROM tree_heads WHERE tenant_id = %s",
            (tenant_id,),
            "read tree head",
        )
        if row is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return TreeHead.unpack(row[0], row[1], row[2])

    def read_nodes(
        self, tenant_id: str, ids: Sequence[NodeID], tree: TreeName = "rfc9162"
    ) -> list[bytes]:
        if not ids:
            return []
        params = (tenant_id, [n.level for n in ids], [n.index for n in ids])
        rows = self._all(_NODES.format(NODE_TABLES[tree]), params, "read tree nodes")
        found = {(level, idx): h for level, idx, h in rows if h is not None}
        out = []
        for node in ids:
            got = found.get((node.level, node.index))
            if got is None:
                raise NotFoundError(f"tree node {node} of tenant {tenant_id!r} is not stored")
            out.append(got)
        return out

    def leaf_hashes(
        self, tenant_id: str, start: int, end: int, tree: TreeName = "rfc9162"
    ) -> list[bytes]:
        rows = self._all(
            f"SELECT hash FROM {NODE_TABLES[tree]} WHERE tenant_id = %s"  # noqa: S608
            " AND level = 0 AND idx >= %s AND idx < %s ORDER BY idx",
            (tenant_id, start, end),
            "read leaves",
        )
        return [bytes(r[0]) for r in rows]

    def checkpoint_candidates(self) -> list[tuple[str, TreeHead, StoredCheckpoint | None]]:
        rows = self._all(_CANDIDATES, (), "find checkpoint candidates")
        return [
            (r[0], TreeHead.unpack(r[1], r[2]), None if r[3] is None else row_checkpoint(r[3:]))
            for r in rows
        ]

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> bool:
        with self._admin_tx("store checkpoint") as conn:
            cur = conn.execute(
                f"INSERT INTO checkpoints ({CHECKPOINT_FIELDS})"  # noqa: S608
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant_id, size) DO NOTHING",
                (
                    checkpoint.tenant_id,
                    checkpoint.size,
                    checkpoint.root_hash,
                    checkpoint.note,
                    checkpoint.signed_at,
                ),
            )
            return cur.rowcount == 1

    def latest_checkpoint(self, tenant_id: str) -> StoredCheckpoint | None:
        row = self._one(
            f"{_CHECKPOINTS} WHERE tenant_id = %s ORDER BY size DESC LIMIT 1",
            (tenant_id,),
            "read checkpoint",
        )
        return None if row is None else row_checkpoint(row)

    def checkpoint_at(self, tenant_id: str, size: int) -> StoredCheckpoint | None:
        row = self._one(
            f"{_CHECKPOINTS} WHERE tenant_id = %s AND size = %s",
            (tenant_id, size),
            "read checkpoint",
        )
        return None if row is None else row_checkpoint(row)

    def list_checkpoints(self, tenant_id: str) -> list[StoredCheckpoint]:
        rows = self._all(
            f"{_CHECKPOINTS} WHERE tenant_id = %s ORDER BY size", (tenant_id,), "list checkpoints"
        )
        return [row_checkpoint(r) for r in rows]

    # -- evidence and erasure --------------------------------------------------------------

    def get_evidence(self, tenant_id: str, event_id: str) -> Evidence | None:
        row = self._one(
            f"SELECT {EVIDENCE_FIELDS} FROM events WHERE id = %s AND tenant_id = %s",  # noqa: S608
            (event_id, tenant_id),
            "read evidence",
        )
        return None if row is None else row_evidence(row)

    def scan_evidence(self, tenant_id: str, start: int, end: int) -> list[Evidence]:
        rows = self._all(
            f"SELECT {EVIDENCE_FIELDS} FROM events"  # noqa: S608
            " WHERE tenant_id = %s AND seq >= %s AND seq < %s ORDER BY seq",
            (tenant_id, start, end),
            "read evidence",
        )
        return [row_evidence(r) for r in rows]

    def redact(
        self, tenant_id: str, event_id: str, erased: Evidence, audit: NewEvent
    ) -> Future[list[Appended]]:
        redacted = _redacted_event(event_id, erased.event.content, erased.salts)
        row = pg_row(event_row(tenant_id, 0, redacted), redacted.body)
        derived = dict(zip(EVENT_COLUMNS, row, strict=True))
        text = search_document(redacted.content)
        columns = (*DERIVED_COLUMNS, "search_message", "search_fields", "redactions")
        values = (
            *(derived[c] for c in DERIVED_COLUMNS),
            *pg_row((text.message, text.fields), redacted.body),
            orjson.dumps({p: c.hex() for p, c in sorted(erased.redacted.items())}),
        )
        assignments = ", ".join(f"{c} = %s" for c in columns)
        params = (*values, event_id, tenant_id)
        sql = f"UPDATE events SET {assignments} WHERE id = %s AND tenant_id = %s"  # noqa: S608

        def update(conn: Connection) -> None:
            if conn.execute(sql, params).rowcount == 0:
                raise NotFoundError(f"no event {event_id!r} in this tenant")

        return self._writer.submit(AppendJob(tenant_id, [audit], before=update))

    # -- retention -------------------------------------------------------------------------

    def prune(self, tenant_id: str, cutoff: str, limit: int, pruned_at: str) -> PruneBatch:
        done: list[PruneBatch] = []

        def delete(conn: Connection) -> None:
            seqs = [
                r[0] for r in conn.execute(_PRUNE, (tenant_id, tenant_id, cutoff, limit, pruned_at))
            ]
            if seqs:
                conn.execute(
                    "UPDATE tree_heads SET pruned = pruned + %s WHERE tenant_id = %s",
                    (len(seqs), tenant_id),
                )
            done.append(PruneBatch(len(seqs), min(seqs, default=None), max(seqs, default=None)))

        self._writer.submit(AppendJob(tenant_id, [], before=delete)).result()
        return done[-1]

    def get_pruned(self, tenant_id: str, event_id: str) -> PrunedEvent | None:
        row = self._one(
            f"{_PRUNED} WHERE p.id = %s AND p.tenant_id = %s",
            (event_id, tenant_id),
            "read pruned event",
        )
        return None if row is None else _pruned(row)

    def scan_pruned(self, tenant_id: str, start: int, end: int) -> list[PrunedEvent]:
        rows = self._all(
            f"{_PRUNED} WHERE p.tenant_id = %s AND p.seq >= %s AND p.seq < %s ORDER BY p.seq",
            (tenant_id, start, end),
            "read pruned events",
        )
        return [_pruned(r) for r in rows]

    # -- events: the writer ----------------------------------------------------------------

    def append(self, tenant_id: str, events: Sequence[NewEvent]) -> Future[list[Appended]]:
        return self._writer.submit(AppendJob(tenant_id, events))


def _redacted_event(event_id: str, content: dict[str, Any], salts: dict[str, bytes]) -> NewEvent:
    """A ``NewEvent`` carrying redacted content, only to reuse the row mapping (as in SQLite)."""
    # Redacted paths keep their place in the packed salts as zeros (see rows.pack_salts).
    aligned = {p: salts.get(p, bytes(SALT_SIZE)) for p in field_paths(content)}
    return NewEvent(event_id, "", content, orjson.dumps(content), aligned, {})
