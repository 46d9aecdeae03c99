"""The storage interface every backend implements, and the values it returns."""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

from trailkeep.merkle import NodeID
from trailkeep.model.event import NewEvent, StoredEvent
from trailkeep.model.tenant import ApiKey, Tenant
from trailkeep.query.facets import FacetCounts
from trailkeep.query.filters import EventQuery
from trailkeep.storage._audit_chunk import AuditChunk, ChunkReader, TallySpec, vouch_rows
from trailkeep.storage._cost import bounded_walk
from trailkeep.storage.rows import QUERY_COLUMNS
from trailkeep.storage.tree import TreeHead, TreeName

__all__ = [
    "AUDIT_FIELDS",
    "DEFAULT_QUERY_TIMEOUT",
    "Appended",
    "AuditChunk",
    "Evidence",
    "Page",
    "PruneBatch",
    "PrunedEvent",
    "Store",
    "StoredCheckpoint",
]

#: Seconds an event read may run before it stops with ``QueryTimeoutError``.
DEFAULT_QUERY_TIMEOUT = 10.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Appended:
    """One event of an append: where it landed, and whether an earlier write already had it."""

    event: StoredEvent
    replayed: bool


@dataclass(frozen=True, slots=True)
class Page:
    """A page of events, and the tenant's log size when it was read (for stable paging)."""

    events: list[StoredEvent]
    log_size: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """An event with what a verifier needs to recompute its leaf without trusting us.

    Attributes:
        salts: field path → salt, for every field that is not redacted.
        redacted: field path → commitment, for every redacted field (its value and salt gone).
    """

    event: StoredEvent
    salts: dict[str, bytes]
    redacted: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class PrunedEvent:
    """What retention keeps of an event: its id, its place in the log and its leaf.

    Its content, salts, filter columns, full-text row and rollup counts are gone; the leaf
    stays in the tree, so every proof that covers it still verifies (DESIGN section 10).
    """

    tenant_id: str
    seq: int
    id: str
    leaf_hash: bytes | None
    pruned_at: str

    def to_wire(self) -> dict[str, Any]:
        """The native API's (and a dump's) form: ``{"id", "seq", "hash", "pruned": true}``."""
        leaf = None if self.leaf_hash is None else self.leaf_hash.hex()
        return {"id": self.id, "seq": self.seq, "hash": leaf, "pruned": True}


@dataclass(frozen=True, slots=True)
class PruneBatch:
    """One prune transaction: how many events went, and the lowest and highest ``seq``;
    ``more`` when it stopped short of its limit to let waiting writes go first, with expired
    events left (a batch short of its limit without it found no more). ``held``: the seconds
    the batch kept the writer (from its first statement to its commit; on SQLite then the disk
    too, through the WAL sync and checkpoint after it), when the store knows them apart from
    the time the batch waited for the writer; None: the caller's clock counts.
    ``uncontended``: the store knows that no write waited for the writer while the batch held
    it (the run may go on at once: it takes only idle writer time); False: it waited, or the
    store cannot tell (the run rests by its duty)."""

    count: int
    first_seq: int | None
    last_seq: int | None
    more: bool = False
    held: float | None = None
    uncontended: bool = False


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    tenant_id: str
    size: int
    root_hash: bytes
    note: str
    signed_at: str


class Store(abc.ABC):
    """Everything the service needs from a database.

    Reads are blocking calls, safe from any thread. Writes of events go through ``append``,
    which returns a future resolved only once the events are durable; backends batch
    concurrent appends into one transaction (group commit).
    Driver exceptions never leave a backend: they become ``trailkeep.errors`` types.
    """

    #: The backend's name (its SQL dialect is its own business).
    dialect: ClassVar[Literal["sqlite", "postgres"]]
    #: Seconds an event read (list, select, count, distinct, facets) may run before it stops
    #: with ``QueryTimeoutError``, so that one expensive query cannot hold a connection.
    query_timeout: float = DEFAULT_QUERY_TIMEOUT

    #: Called on the writer thread after each group commit, once its appends are acknowledged
    #: (the checkpointer signs from here, so a busy log is signed right after a write rather
    #: than behind the next one). It must never wait for a write queued behind it; the
    #: store's ``add_checkpoint`` called from it runs at once, on the writer's connection.
    after_commit: Callable[[], None] | None = None
    #: When (``time.monotonic()``) ``after_commit`` next has work to do. A writer keeps its
    #: groups small as that time nears, so the hook does not wait long behind a big group.
    after_commit_due: float = math.inf
    #: Called on the writer thread with a tenant's head, read inside the write transaction,
    #: before new events are sequenced after it; whatever it raises (a ``TrailkeepError``)
    #: fails that append alone, before anything is acknowledged. The service refuses writes
    #: to a tenant whose tree no longer extends its signed checkpoints here (a restored
    #: database, ``service.forks``). It must be cheap and must not touch the database.
    append_guard: Callable[[str, TreeHead], None] | None = None

    def _check_append(self, tenant_id: str, head: TreeHead) -> None:
        guard = self.append_guard
        if guard is not None:
            guard(tenant_id, head)

    def is_cheap(self, query: EventQuery) -> bool:
        """Whether a page of ``query`` is a bounded index walk (the service runs the others
        under bounded concurrency). Both backends keep the same indexes."""
        return bounded_walk(query)

    def _run_after_commit(self) -> None:
        hook = self.after_commit
        if hook is not None:
            try:
                hook()
            except Exception:
                log.exception("the after-commit hook failed; the writer carries on")

    # -- lifecycle -------------------------------------------------------------------------

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending schema migrations in order; return the names applied."""

    @abc.abstractmethod
    def close(self) -> None:
        """Finish queued writes, then release connections and threads."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise ``UnavailableError`` unless the database answers a trivial query."""

    # -- tenants and keys ------------------------------------------------------------------

    @abc.abstractmethod
    def create_tenant(self, tenant: Tenant) -> None:
        """Raise ``ConflictError`` if the id is taken."""

    @abc.abstractmethod
    def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    @abc.abstractmethod
    def list_tenants(self) -> list[Tenant]: ...

    @abc.abstractmethod
    def update_tenant_settings(self, tenant_id: str, settings: dict[str, Any]) -> Tenant: ...

    @abc.abstractmethod
    def create_key(self, key: ApiKey) -> None: ...

    @abc.abstractmethod
    def get_key(self, client_id: str) -> ApiKey | None: ...

    @abc.abstractmethod
    def list_keys(self, tenant_id: str | None) -> list[ApiKey]: ...

    @abc.abstractmethod
    def revoke_key(self, client_id: str, revoked_at: str) -> None: ...

    @abc.abstractmethod
    def touch_keys(self, used: dict[str, str]) -> None:
        """Note when keys were last used (client id → time); a time never moves backwards."""

    # -- dialect notes ---------------------------------------------------------------------

    @abc.abstractmethod
    def put_note(self, tenant_id: str, key: str, value: bytes, expires_at: str) -> None:
        """Keep (or replace) a dialect's note until ``expires_at`` (RFC 3339, fixed width),
        so any server process on this database reads it; notes past their time go."""

    @abc.abstractmethod
    def get_note(self, tenant_id: str, key: str, now: str) -> bytes | None:
        """A tenant's note, unless it expired by ``now``."""

    # -- events ----------------------------------------------------------------------------

    @abc.abstractmethod
    def append(self, tenant_id: str, events: Sequence[NewEvent]) -> Future[list[Appended]]:
        """Sequence events into the tenant's log, all or nothing.

        An event whose idempotency key the tenant has already used is not written again;
        its ``Appended`` carries the first write's event with ``replayed=True``.
        """

    @abc.abstractmethod
    def get_event(self, tenant_id: str, event_id: str) -> StoredEvent | None: ...

    @abc.abstractmethod
    def list_events(self, tenant_id: str, query: EventQuery) -> Page:
        """One page of ``select``, with the log size read in the same snapshot."""

    @abc.abstractmethod
    def select(self, tenant_id: str, query: EventQuery) -> list[StoredEvent]:
        """The matches of ``query`` at ``[offset, offset + limit)`` in its order."""

    @abc.abstractmethod
    def count(self, tenant_id: str, query: EventQuery) -> int:
        """The exact number of matches (``limit``, ``offset`` and ``after`` ignored)."""

    @abc.abstractmethod
    def distinct(
        self, tenant_id: str, field: tuple[str, ...], query: EventQuery, limit: int
    ) -> list[tuple[object, int]]:
        """Distinct values of ``field`` among the matches, with counts, most frequent first
        (ties by value order); missing and null values left out."""

    @abc.abstractmethod
    def log_size(self, tenant_id: str) -> int: ...

    @abc.abstractmethod
    def facets(self, tenant_id: str, query: EventQuery, top: int) -> FacetCounts:
        """Counts per dimension (top values) and a time histogram of the selected events."""

    # -- the tree --------------------------------------------------------------------------

    @abc.abstractmethod
    def tree_head(self, tenant_id: str) -> TreeHead:
        """The tenant's committed tree head; ``NotFoundError`` for an unknown tenant."""

    @abc.abstractmethod
    def read_nodes(
        self, tenant_id: str, ids: Sequence[NodeID], tree: TreeName = "rfc9162"
    ) -> list[bytes]:
        """Hashes of complete subtrees (level 0 = leaves) of one of the tenant's two trees
        (``storage.tree``), in the order asked.

        Raises ``NotFoundError`` naming the first node that is not stored.
        """

    @abc.abstractmethod
    def leaf_hashes(
        self, tenant_id: str, start: int, end: int, tree: TreeName = "rfc9162"
    ) -> list[bytes]:
        """Leaf hashes of ``seq`` in ``[start, end)`` in one of the two trees, in order."""

    @abc.abstractmethod
    def checkpoint_candidates(self) -> list[tuple[str, TreeHead, StoredCheckpoint | None]]:
        """Tenants whose tree grew past their latest checkpoint (or have none), with both."""

    @abc.abstractmethod
    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> bool:
        """Keep a signed checkpoint; False if one of that size was already kept."""

    @abc.abstractmethod
    def latest_checkpoint(self, tenant_id: str) -> StoredCheckpoint | None: ...

    @abc.abstractmethod
    def checkpoint_at(self, tenant_id: str, size: int) -> StoredCheckpoint | None: ...

    @abc.abstractmethod
    def list_checkpoints(self, tenant_id: str) -> list[StoredCheckpoint]:
        """Every checkpoint kept for the tenant, oldest first."""

    # -- evidence and erasure --------------------------------------------------------------

    @abc.abstractmethod
    def get_evidence(self, tenant_id: str, event_id: str) -> Evidence | None: ...

    @abc.abstractmethod
    def scan_evidence(self, tenant_id: str, start: int, end: int) -> list[Evidence]:
        """Evidence of ``seq`` in ``[start, end)``, in ``seq`` order (callers page by range)."""

    @abc.abstractmethod
    def redact(
        self, tenant_id: str, event_id: str, erased: Evidence, audit: NewEvent
    ) -> Future[list[Appended]]:
        """Store an event's erased content, salts and redaction commitments, and append the
        audit event that records the erasure, in one transaction. The leaf never changes.

        ``erased.event.content`` holds the redaction markers; ``erased.salts`` lacks the
        erased fields' salts; ``erased.redacted`` has their commitments.
        """

    # -- retention -------------------------------------------------------------------------

    @abc.abstractmethod
    def prune(self, tenant_id: str, cutoff: str, limit: int, pruned_at: str) -> PruneBatch:
        """Prune up to ``limit`` events of the tenant whose ``timestamp`` is before ``cutoff``
        (oldest first), in one transaction; blocks until it is durable.

        Each event's row, salts, filter columns, full-text row and rollup counts go; a
        tombstone ``(seq, id, pruned_at)`` is kept and its leaf stays in the tree. Callers
        loop until a batch prunes nothing, keeping each transaction short.
        """

    @abc.abstractmethod
    def get_pruned(self, tenant_id: str, event_id: str) -> PrunedEvent | None:
        """The tombstone of a pruned event, with its leaf hash; None if it was never pruned."""

    @abc.abstractmethod
    def scan_pruned(self, tenant_id: str, start: int, end: int) -> list[PrunedEvent]:
        """Tombstones of ``seq`` in ``[start, end)``, in ``seq`` order, with leaf hashes."""

    # -- auditing (``trailkeep verify database``) -------------------------------------------
    # Raw stored state for the auditor, who trusts none of it: no decoding, no filtering.

    @abc.abstractmethod
    def audit_rows(self, tenant_id: str, start: int, end: int) -> list[tuple[Any, ...]]:
        """Every stored column of the events of ``seq`` in ``[start, end)``, in ``seq`` order.

        One plain tuple per event, fields as ``AUDIT_FIELDS`` names them (a million are read
        per audit, so no object per row). ``search_message`` and ``search_fields`` are what
        the full-text index holds for the event (None when it holds nothing).
        """

    @contextmanager
    def audit_scan(self, tenant_id: str) -> Iterator[ChunkReader]:
        """A reader of the tenant's rows a chunk at a time, each row the C part vouches for
        already checked (``_audit_chunk``). This one checks ``audit_rows``; a backend may read
        its rows its own way."""

        def read(
            start: int, end: int, watch: frozenset[int], tally: TallySpec | None
        ) -> AuditChunk:
            rows = self.audit_rows(tenant_id, start, end)
            return vouch_rows(rows, start, end, tenant_id, watch, tally)

        yield read

    @abc.abstractmethod
    def audit_nodes(
        self, tenant_id: str, level: int, start: int, end: int
    ) -> list[tuple[int, int, bytes]]:
        """Stored interior nodes of ``level`` (>= 1) with an index in ``[start, end)``, as
        ``(level, index, hash)`` in index order."""

    def audit_leaf_hashes(
        self, tenant_id: str, start: int, end: int, tree: TreeName = "rfc9162"
    ) -> bytes:
        """``leaf_hashes`` concatenated, if every position of ``[start, end)`` has its leaf of
        32 bytes; else ``b""`` (then ``leaf_hashes`` says what is there)."""
        leaves = self.leaf_hashes(tenant_id, start, end, tree)
        if len(leaves) != end - start or any(len(h) != 32 for h in leaves):
            return b""
        return b"".join(leaves)

    def audit_node_hashes(self, tenant_id: str, level: int, start: int, end: int) -> bytes:
        """The hashes of ``audit_nodes`` concatenated in index order, if every index of
        ``[start, end)`` has its node of 32 bytes; else ``b""``. What a recomputed level is
        compared with in one go (a difference is then looked at node by node)."""
        nodes = self.audit_nodes(tenant_id, level, start, end)
        if len(nodes) != end - start or any(len(h) != 32 for _, _, h in nodes):
            return b""
        return b"".join([h for _, _, h in nodes])

    @abc.abstractmethod
    def audit_strays(self, tenant_id: str, size: int) -> list[tuple[int, str]]:
        """``(seq, id)`` of the tenant's rows outside ``[0, size)``, in ``seq`` order."""

    @abc.abstractmethod
    def audit_stray_nodes(self, tenant_id: str, size: int) -> list[tuple[int, int]]:
        """``(level, index)`` of stored nodes that are no complete subtree of ``[0, size)``."""

    @abc.abstractmethod
    def audit_rollups(self, tenant_id: str) -> dict[tuple[str, str, str], int] | None:
        """Stored facet rollups, ``(dim, period, value) -> count`` (zero counts left out);
        None for a backend that keeps no rollups."""

    def audit_rollups_keep(self, dim: str, period: str) -> bool:
        """Whether the stored rollups (``audit_rollups``) count ``dim`` per ``period`` (an hour
        or a day prefix): SQLite keeps every dimension per hour and per day; a backend that
        keeps fewer says which, and only those are compared with the recount."""
        return True

    def audit_rollups_match(self, tenant_id: str, tally: TallySpec) -> bool | None:
        """Whether the stored rollups (``audit_rollups``) are exactly what ``tally``, the C
        tally of a scan (``_fastleaf.Tally``, ``RollupTally.whole``), counted, compared by the
        backend without reading them into Python; None if it cannot say (no scan in progress
        in this thread, no C part), and then ``audit_rollups`` is compared. Called inside
        ``audit_scan``."""
        return None

    def audit_fulltext_index(self) -> str | None:
        """Whether the full-text index agrees with the text it indexes, checked by the database
        itself where it can: None if it does (or the backend has no such check), else why not."""
        return None

    def audit_text(self, value: str) -> str:
        """``value`` as this backend stores it in a text column (where it differs from the
        event body, e.g. PostgreSQL text cannot hold NUL)."""
        return value


#: The fields of each ``Store.audit_rows`` tuple, in order.
AUDIT_FIELDS: Final = (
    "seq",
    "id",
    "received_at",
    "body",
    "salts",
    "leaf_hash",
    "redactions",
    "search_message",
    "search_fields",
    *QUERY_COLUMNS,
)
