"""Ingest and read events: normalization, commitments, limits, idempotency and paging."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeAlias, TypeVar

import orjson

from trailkeep.errors import (
    InvalidInputError,
    NotFoundError,
    TooLargeError,
    ValidationFailedError,
)
from trailkeep.model.commitments import SALT_SIZE, commit_fields, field_paths, leaf_prefix
from trailkeep.model.entropy import random_bytes
from trailkeep.model.event import OBJECT_FIELDS, NewEvent, StoredEvent
from trailkeep.model.ids import new_event_id, new_event_ids
from trailkeep.model.pangea import pangea_leaf
from trailkeep.model.signing import SignatureMismatchError, verify_signature
from trailkeep.model.timeparse import format_time, parse_time, utc_text
from trailkeep.query.ast import Node
from trailkeep.query.facets import FacetCounts
from trailkeep.query.filters import EventQuery, Sort, conjoin, filter_node
from trailkeep.service.cursor import Cursor, query_fingerprint
from trailkeep.service.reads import ReadGate
from trailkeep.service.selection import search_tree
from trailkeep.storage.base import Appended, PrunedEvent, Store

__all__ = [
    "ADMIN_NAMESPACES",
    "ERASURE_ACTION",
    "EventService",
    "Limits",
    "ListResult",
    "SaltPool",
    "is_erasure_record",
    "is_reserved",
    "normalize_event",
    "one_at_a_time",
    "prepare_all",
    "prepare_client_event",
    "prepare_event",
]

_DROP_WHEN_EMPTY = (*OBJECT_FIELDS, "metadata")
T = TypeVar("T")
#: Field paths per event a batch's first draw of salts is sized for (the benchmark's have ~14).
_PATHS_HINT = 16
#: Most random bytes one draw takes (4,096 salts).
_MAX_DRAW = 64 * 1024
#: Batches with more events than this are prepared on a worker thread, off the event loop.
OFFLOAD_EVENTS = 8
#: Held by each CPU-bound step of a request that runs off the event loop (parsing a large
#: body, preparing a large batch). Under the GIL two such threads finish no sooner than one
#: after the other, but each extra thread competing for the GIL delays the event loop more.
HEAVY_WORK = threading.Lock()
#: The action of the audit record every erasure writes (category ``system``).
ERASURE_ACTION = "event.redact"


def is_erasure_record(content: Mapping[str, Any]) -> bool:
    """Whether an event has the shape of an erasure's audit record.

    That record is the only trace that an erasure happened, so it can never be erased itself;
    and since the shape is what tells it apart, clients may not write events of that shape
    (or they could write personal data nobody could ever erase).
    """
    return content.get("action") == ERASURE_ACTION and content.get("category") == "system"


#: In category ``system``, an action whose first dotted part is one of these is the server's
#: own record (``tenant.create``, ``key.revoke``, ``retention.prune``, ``event.redact``...):
#: the admin trail (``service.admin_trail``).
ADMIN_NAMESPACES = frozenset({"tenant", "key", "retention", "legal_hold", "export", "event", "log"})


def is_reserved(content: Mapping[str, Any]) -> bool:
    """Whether an event has the shape of a record only the server writes.

    Clients keep category ``system`` for their own events (``system.start``); only the
    actions of the admin namespaces are refused, so a reader filtering
    ``category:system AND action:key.*`` sees the server's records and nothing forged.
    """
    action = content.get("action")
    if content.get("category") != "system" or not isinstance(action, str):
        return False
    return action.split(".", 1)[0] in ADMIN_NAMESPACES


@dataclass(frozen=True, slots=True)
class Limits:
    """What a request may carry before it is refused.

    Attributes:
        max_future_skew: seconds an event's ``timestamp`` may lie ahead of the server's clock
            (clocks drift; a far-future event would head every newest-first list forever).
            Past timestamps have no bound: importing history is normal.
    """

    max_event_bytes: int = 64 * 1024
    max_batch_events: int = 1000
    max_list_limit: int = 1000
    max_future_skew: float = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class ListResult:
    events: list[StoredEvent]
    next_cursor: str | None


#: The server's clock, in nanoseconds since the epoch (a name tests can replace).
_now_ns = time.time_ns


class _SecondText:
    """``YYYY-MM-DDTHH:MM:SS`` of a time in ns, remembering the last second it wrote.

    The events of a batch (and of a busy second) share their second, and ``gmtime`` +
    ``strftime`` cost more than the rest of the formatting. One entry, replaced whole, so a
    thread never reads half of it.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[int, str] = (-1, "")

    def __call__(self, secs: int) -> str:
        cached, text = self._last
        if secs != cached:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
            self._last = (secs, text)
        return text


_received_second = _SecondText()
_latest_second = _SecondText()


def _format_ns(ns: int) -> str:
    secs, rem = divmod(ns, 1_000_000_000)
    return f"{_received_second(secs)}.{rem // 1000:06d}Z"


def _surely_not_too_late(text: str, now_ns: int, limits: Limits) -> bool:
    """Whether a fixed-width ``text`` lies before the second of the latest time accepted.

    Fixed-width text orders as time does. ``False`` means "not sure": the exact check decides.
    """
    try:
        latest = _latest_second(now_ns // 1_000_000_000 + math.floor(limits.max_future_skew))
    except (OverflowError, OSError, ValueError):  # past what gmtime can write
        return False
    return text < latest


def _skew_text(seconds: float) -> str:
    """``86400`` → ``24 h``: the bound as an operator would set it."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds:g} s"


class SaltPool:
    """Fresh salts for the events of one request, from a few large draws (``random_bytes``,
    the process's reservoir of kernel CSPRNG bytes, so a single event costs no system call).

    The same kernel CSPRNG as :func:`~trailkeep.model.commitments.commit_fields`, and no byte
    is handed out twice; only the number of ``getrandom()`` calls changes. That matters under
    load because CPython releases the GIL around each of them: done once per event on the
    event loop thread, every release wakes the writer thread (waiting to retake the GIL after
    a SQLite step) for nothing, and since each release and retake counts as a GIL switch, the
    writer never gets to ask for a forced one: it starves until the whole batch is prepared.

    Not thread-safe: one pool serves one request, on one thread, and is then dropped.

    Args:
        events: how many events it will salt, to size the first draw.
    """

    __slots__ = ("_at", "_draw", "_pool")

    def __init__(self, events: int) -> None:
        self._draw = min(max(events, 1) * _PATHS_HINT * SALT_SIZE, _MAX_DRAW)
        self._pool = b""
        self._at = 0

    def commit(self, values: Mapping[str, Any]) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """``commit_fields(values)``, its salts taken from this pool.

        Raises:
            ValidationFailedError: a value has no canonical JSON form (the message names
                the path).
        """
        size = len(values) * SALT_SIZE
        if self._at + size > len(self._pool):
            self._pool, self._at = random_bytes(max(size, self._draw)), 0
        at = self._at
        self._at = at + size
        return commit_fields(values, self._pool[at : at + size])


def _check_signature(content: dict[str, Any], where: str) -> None:
    try:
        verify_signature(content)
    except SignatureMismatchError as exc:
        raise InvalidInputError(f"{where}: {exc.message}", code="BAD_SIGNATURE") from None
    except ValidationFailedError as exc:
        raise ValidationFailedError(f"{where}: {exc.message}") from None


def _timestamp(raw: Any, where: str, now_ns: int, limits: Limits) -> str:
    """The event's ``timestamp`` in the fixed-width form; refused if too far in the future."""
    fast = utc_text(raw) if isinstance(raw, str) else None
    if fast is not None and _surely_not_too_late(fast, now_ns, limits):
        return fast  # the common case, without a datetime
    parsed = parse_time(str(raw), param=f"{where}.timestamp")
    if parsed is None:
        return _format_ns(now_ns)
    try:
        latest = datetime.fromtimestamp(now_ns / 1e9 + limits.max_future_skew, UTC)
    except (OverflowError, OSError, ValueError):  # a skew past year 9999 bounds nothing
        return format_time(parsed)
    if parsed > latest:
        raise ValidationFailedError(
            f"{where}.timestamp: {format_time(parsed)} is more than"
            f" {_skew_text(limits.max_future_skew)} ahead of the server's clock; the latest"
            f" accepted now is {format_time(latest)} (TRAILKEEP_MAX_FUTURE_SKEW)"
        )
    return format_time(parsed)


def normalize_event(
    content: dict[str, Any], limits: Limits, *, index: int | None = None
) -> tuple[str, dict[str, Any], bytes]:
    """Everything ingest does to an event before committing to it.

    Apart from :func:`prepare_event` so that benchmarks can measure what the commitments
    cost without any way to store an event without them (there is none).

    Returns:
        ``(received_at, content, body)``: the server's receive time, the content as stored
        (empty objects dropped, ``timestamp`` and ``outcome`` set) and its JSON.
    """
    where = "event" if index is None else f"events[{index}]"
    now_ns = _now_ns()
    received_at = _format_ns(now_ns)
    content = {k: v for k, v in content.items() if not (k in _DROP_WHEN_EMPTY and not v)}
    raw_ts = content.get("timestamp")
    content["timestamp"] = (
        received_at if raw_ts is None else _timestamp(raw_ts, where, now_ns, limits)
    )
    content.setdefault("outcome", "unknown")
    if "signature" in content:
        _check_signature(content, where)
    try:
        body = orjson.dumps(content)
    except orjson.JSONEncodeError as exc:  # an integer beyond 64 bits, a lone surrogate
        raise ValidationFailedError(f"{where}: value cannot be stored as JSON: {exc}") from None
    if len(body) > limits.max_event_bytes:
        raise TooLargeError(
            f"{where} is {len(body)} bytes of JSON; the limit is"
            f" {limits.max_event_bytes} bytes per event"
        )
    return received_at, content, body


def prepare_event(
    content: dict[str, Any],
    limits: Limits,
    *,
    index: int | None = None,
    salt_pool: SaltPool | None = None,
    event_id: str | None = None,
) -> NewEvent:
    """Normalize one client event and compute everything that does not need its ``seq``.

    Every event gets its salts and commitments (DESIGN §3): there is no way to write an event
    without them, since one such event would break its tenant's tree for good.

    Args:
        content: the client's fields, already type-checked at the edge, nulls removed.
        limits: the size and time limits to enforce.
        index: the event's position in a batch, named in error messages.
        salt_pool: where to take the salts from (a request's events share one); by default
            each event draws its own.
        event_id: the event's id, drawn beforehand (:func:`new_event_id`); by default, here.
    """
    received_at, content, body = normalize_event(content, limits, index=index)
    if event_id is None:
        event_id = new_event_id()
    values = field_paths(content)
    # In path order, as stored.
    salts, commitments = commit_fields(values) if salt_pool is None else salt_pool.commit(values)
    prefix = leaf_prefix(event_id, received_at, commitments)
    second = pangea_leaf(content, received_at)
    return NewEvent(event_id, received_at, content, body, salts, commitments, prefix, second)


def prepare_client_event(
    content: dict[str, Any],
    limits: Limits,
    *,
    index: int | None = None,
    salt_pool: SaltPool | None = None,
    event_id: str | None = None,
) -> NewEvent:
    """:func:`prepare_event` for an event a client sent: the server's own shapes refused.

    Raises:
        ValidationFailedError: the event has the shape of an admin record (:func:`is_reserved`).
    """
    if is_reserved(content):
        where = "event" if index is None else f"events[{index}]"
        raise ValidationFailedError(
            f"{where}: action {content['action']!r} in category 'system' is reserved for"
            " the records the server writes of administrative acts (tenant.*, key.*,"
            " retention.*, legal_hold.*, export.*, event.*, log.*); use another category"
            " or action"
        )
    return prepare_event(content, limits, index=index, salt_pool=salt_pool, event_id=event_id)


def prepare_all(
    contents: Sequence[dict[str, Any]], limits: Limits, *, batch: bool, first_index: int = 0
) -> list[NewEvent]:
    """The events of one request, prepared in order (in-process or in a worker process).

    Args:
        first_index: the batch index of ``contents[0]`` (for a part of a batch), as errors
            name it.
    """
    # No getrandom() per event while preparing (see SaltPool): one for all the ids, one
    # (or a few) for all the salts.
    ids = new_event_ids(len(contents))
    pool = SaltPool(len(contents))
    return [
        prepare_client_event(
            c, limits, index=first_index + i if batch else None, salt_pool=pool, event_id=ids[i]
        )
        for i, c in enumerate(contents)
    ]


_Events: TypeAlias = list[StoredEvent]  # ``list`` is also a method name of the class below
_Counts: TypeAlias = list[tuple[object, int]]


class PoolLike(Protocol):
    """What ingest needs of a prepare pool (``service.prepare_pool.PreparePool``)."""

    min_events: int

    async def prepare(
        self, contents: Sequence[dict[str, Any]], *, batch: bool
    ) -> list[NewEvent]: ...


def one_at_a_time(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` under :data:`HEAVY_WORK` (call it on a worker thread, never the loop)."""
    with HEAVY_WORK:
        return fn(*args)


class EventService:
    """Event use cases for one store.

    Args:
        store: where events live.
        limits: sizes, counts and times beyond which requests are refused.
        gate: runs the ``a``-prefixed (async) reads, heavy ones under bounded concurrency
            (``service.reads``); by default 2 heavy reads at a time.
    """

    def __init__(self, store: Store, limits: Limits, *, gate: ReadGate | None = None) -> None:
        self._store = store
        self._limits = limits
        self._gate = gate if gate is not None else ReadGate(wait=store.query_timeout)
        #: Worker processes for large batches (``TRAILKEEP_PREPARE_WORKERS``); None: in-process.
        self.prepare_pool: PoolLike | None = None

    # -- ingest ----------------------------------------------------------------------------

    def prepare(
        self,
        content: dict[str, Any],
        *,
        index: int | None = None,
        salt_pool: SaltPool | None = None,
        event_id: str | None = None,
    ) -> NewEvent:
        return prepare_client_event(
            content, self._limits, index=index, salt_pool=salt_pool, event_id=event_id
        )

    async def ingest(
        self, tenant_id: str, contents: Sequence[dict[str, Any]], *, batch: bool
    ) -> list[Appended]:
        """Validate, then append all events or none; resolves once they are durable."""
        if len(contents) > self._limits.max_batch_events:
            raise TooLargeError(
                f"batch has {len(contents)} events; the limit is {self._limits.max_batch_events}"
            )
        if batch and not contents:
            raise ValidationFailedError("events: a batch needs at least one event")
        pool = self.prepare_pool
        if pool is not None and len(contents) >= pool.min_events:
            # The other core prepares; this process only unpacks what comes back.
            events = await pool.prepare(contents, batch=batch)
        elif len(contents) > OFFLOAD_EVENTS:
            # Seconds of CPU for a full batch: on the event loop it would stall every other
            # request (health checks included) meanwhile.
            events = await asyncio.to_thread(one_at_a_time, self._prepare_all, contents, batch)
        else:
            events = self._prepare_all(contents, batch)
        return await asyncio.wrap_future(self._store.append(tenant_id, events))

    def _prepare_all(self, contents: Sequence[dict[str, Any]], batch: bool) -> list[NewEvent]:
        return prepare_all(contents, self._limits, batch=batch)

    # -- reads -----------------------------------------------------------------------------

    def get(self, tenant_id: str, event_id: str) -> StoredEvent:
        """An event with its content; a pruned one is ``NotFoundError`` here (the dialects
        answer it as their vendor answers an expired record)."""
        event = self._store.get_event(tenant_id, event_id)
        if event is None:
            raise NotFoundError(f"no event {event_id!r} in this tenant")
        return event

    def get_or_pruned(self, tenant_id: str, event_id: str) -> StoredEvent | PrunedEvent:
        """An event, or what retention kept of it (id, seq, leaf): pruned, never missing."""
        event = self._store.get_event(tenant_id, event_id)
        if event is not None:
            return event
        pruned = self._store.get_pruned(tenant_id, event_id)
        if pruned is None:
            raise NotFoundError(f"no event {event_id!r} in this tenant")
        return pruned

    def list(
        self,
        tenant_id: str,
        *,
        filters: Mapping[str, Sequence[str]],
        start: str | None,
        end: str | None,
        sort: Sort,
        limit: int,
        cursor: str | None,
        q: str | None = None,
    ) -> ListResult:
        """One page of events, newest first by default, with a cursor to the next page.

        Args:
            q: a search-language query (docs/search.md), ANDed with the filters.
        """
        fingerprint = query_fingerprint(filters, start, end, sort, extra=q or "")
        after: tuple[str, str] | None = None
        max_seq: int | None = None
        if cursor:
            position = Cursor.decode(cursor, fingerprint)
            after, max_seq = (position.ts, position.id), position.max_seq
        # One extra row tells whether a next page exists, so a walk never ends on an empty page.
        query = EventQuery(
            self.condition(filters, q),
            start,
            end,
            sort,
            limit=limit + 1,
            after=after,
            max_seq=max_seq,
        )
        page = self._store.list_events(tenant_id, query)
        events = page.events[:limit]
        next_cursor = None
        if len(page.events) > limit:
            last = events[-1]
            snapshot = max_seq if max_seq is not None else page.log_size - 1
            next_cursor = Cursor(last.content["timestamp"], last.id, snapshot, fingerprint).encode()
        return ListResult(events, next_cursor)

    def select(self, tenant_id: str, query: EventQuery) -> _Events:
        """One page of ``query``'s matches: ``where``, range, order, ``offset``, ``limit``.

        Exact at any size: storage answers from the whole tenant, never a budget.

        Raises:
            InvalidInputError: ``limit`` is over the list limit.
            QueryTimeoutError: the read ran past the query time limit.
        """
        if query.limit > self._limits.max_list_limit:
            raise InvalidInputError(
                f"limit is {query.limit}; the most one page holds is {self._limits.max_list_limit}"
            )
        return self._store.select(tenant_id, query)

    def count(self, tenant_id: str, query: EventQuery) -> int:
        """The exact number of ``query``'s matches (``limit``, ``offset``, ``after`` ignored).

        Raises:
            QueryTimeoutError: the read ran past the query time limit.
        """
        return self._store.count(tenant_id, query)

    def distinct(
        self, tenant_id: str, field: tuple[str, ...], query: EventQuery, limit: int
    ) -> _Counts:
        """Distinct values of ``field`` among ``query``'s matches, with counts, most frequent
        first; missing and null values left out.

        Raises:
            QueryTimeoutError: the read ran past the query time limit.
        """
        return self._store.distinct(tenant_id, field, query, limit)

    # -- reads from async code: heavy ones under bounded concurrency ---------------------------

    def is_heavy(self, query: EventQuery) -> bool:
        """Whether a page of ``query`` may read much of the tenant (not one bounded index walk)."""
        return not self._store.is_cheap(query)

    async def alist(
        self,
        tenant_id: str,
        *,
        filters: Mapping[str, Sequence[str]],
        start: str | None,
        end: str | None,
        sort: Sort,
        limit: int,
        cursor: str | None,
        q: str | None = None,
    ) -> ListResult:
        """``list`` from async code, in a worker thread; a heavy one waits its turn."""
        query = EventQuery(self.condition(filters, q), start, end, sort, limit=limit)
        return await self._gate.run(
            lambda: self.list(
                tenant_id,
                filters=filters,
                start=start,
                end=end,
                sort=sort,
                limit=limit,
                cursor=cursor,
                q=q,
            ),
            heavy=self.is_heavy(query),
        )

    async def aselect(self, tenant_id: str, query: EventQuery) -> _Events:
        """``select`` from async code; a heavy one waits its turn."""
        return await self._gate.run(
            lambda: self.select(tenant_id, query), heavy=self.is_heavy(query)
        )

    async def acount(self, tenant_id: str, query: EventQuery) -> int:
        """``count`` from async code; counts are heavy (they read every match)."""
        return await self._gate.run(lambda: self.count(tenant_id, query), heavy=True)

    async def adistinct(
        self, tenant_id: str, field: tuple[str, ...], query: EventQuery, limit: int
    ) -> _Counts:
        """``distinct`` from async code; heavy (it reads every match)."""
        return await self._gate.run(
            lambda: self.distinct(tenant_id, field, query, limit), heavy=True
        )

    async def afacets(
        self,
        tenant_id: str,
        *,
        filters: Mapping[str, Sequence[str]],
        start: str | None,
        end: str | None,
        q: str | None = None,
        top: int = 10,
    ) -> FacetCounts:
        """``facets`` from async code; heavy."""
        return await self._gate.run(
            lambda: self.facets(tenant_id, filters=filters, start=start, end=end, q=q, top=top),
            heavy=True,
        )

    def condition(self, filters: Mapping[str, Sequence[str]], q: str | None = None) -> Node | None:
        """Native filters and a search query as one tree (None: everything).

        Raises:
            QuerySyntaxError: ``q`` does not parse or validate.
        """
        return conjoin(filter_node(filters), search_tree(q))

    def facets(
        self,
        tenant_id: str,
        *,
        filters: Mapping[str, Sequence[str]],
        start: str | None,
        end: str | None,
        q: str | None = None,
        top: int = 10,
    ) -> FacetCounts:
        """Distinct values with counts and a time histogram, for the same selection as list."""
        query = EventQuery(self.condition(filters, q), start, end)
        return self._store.facets(tenant_id, query, top)
