"""Live streams of a tenant's log: events in log order, resumable, with signed checkpoints.

A subscriber names a position (a ``seq``; every matching event up to it has been delivered) and
receives, in ``seq`` order, every later event its selection matches — with no gap and no
duplicate, because a tenant's events become visible in ``seq`` order (they are sequenced and
committed under one lock per tenant) and each read continues strictly after the last position.

Waiting is cheap: the ingest path of this process wakes a tenant's streams the moment its events
are durable (:class:`LogNotifier`); events written by other processes (``serve --workers``,
several servers on one PostgreSQL) are found by a poll every ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from trailkeep.model.event import StoredEvent
from trailkeep.query.ast import Node
from trailkeep.query.filters import EventQuery
from trailkeep.service.events import EventService, Limits
from trailkeep.service.reads import ReadGate
from trailkeep.service.selection import Selection
from trailkeep.storage.base import Appended, Page, Store, StoredCheckpoint

__all__ = [
    "Heartbeat",
    "LogNotifier",
    "NotifyingEventService",
    "StreamCheckpoint",
    "StreamEvent",
    "StreamItem",
    "StreamService",
]

#: Most events one read of a stream fetches; a subscriber far behind catches up in batches.
BATCH = 500


class LogNotifier:
    """Per-tenant wake-ups for streams, safe across threads and event loops.

    A stream reads :meth:`version` before it reads the store and then waits for a newer version,
    so an append that lands between its read and its wait still wakes it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    def version(self, tenant_id: str) -> int:
        with self._lock:
            return self._versions.get(tenant_id, 0)

    def notify(self, tenant_id: str) -> None:
        """The tenant's log grew: wake every stream waiting on it."""
        with self._lock:
            self._versions[tenant_id] = self._versions.get(tenant_id, 0) + 1
            waiters = self._waiters.pop(tenant_id, set())
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed: its stream is gone
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, tenant_id: str, version: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a version newer than ``version``; True if woken."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._lock:
            if self._versions.get(tenant_id, 0) != version:
                return True
            self._waiters.setdefault(tenant_id, set()).add(entry)
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                waiting = self._waiters.get(tenant_id)
                if waiting is not None:
                    waiting.discard(entry)
                    if not waiting:
                        del self._waiters[tenant_id]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class NotifyingEventService(EventService):
    """The event service, waking the tenant's live streams once an ingest is durable."""

    def __init__(
        self,
        store: Store,
        limits: Limits,
        notifier: LogNotifier,
        *,
        integrity: bool = True,
        gate: ReadGate | None = None,
    ) -> None:
        super().__init__(store, limits, integrity=integrity, gate=gate)
        self._notifier = notifier

    async def ingest(
        self, tenant_id: str, contents: Sequence[dict[str, Any]], *, batch: bool
    ) -> list[Appended]:
        appended = await super().ingest(tenant_id, contents, batch=batch)
        if any(not a.replayed for a in appended):
            self._notifier.notify(tenant_id)
        return appended


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """An event the selection matches; the subscriber's position is now its ``seq``."""

    event: StoredEvent


@dataclass(frozen=True, slots=True)
class StreamCheckpoint:
    """A signed checkpoint the subscriber is caught up with.

    Every event with ``seq < checkpoint.size`` that the selection matches has been delivered
    before this item, so the subscriber can prove it missed none (docs/api.md).

    Attributes:
        position: the subscriber's position (``>= checkpoint.size - 1``).
    """

    checkpoint: StoredCheckpoint
    position: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Nothing happened for a while; keeps proxies from closing an idle connection."""


StreamItem = StreamEvent | StreamCheckpoint | Heartbeat


class StreamService:
    """Live streams over one store.

    Args:
        store: where the events are.
        notifier: wakes streams when this process appends.
        poll_interval: seconds between reads when nothing woke the stream (other processes).
        heartbeat: seconds of silence after which a ``Heartbeat`` is sent.
        checkpoint_interval: seconds between looks for a newer signed checkpoint.
        clock: monotonic seconds (tests may pass their own).
    """

    def __init__(
        self,
        store: Store,
        notifier: LogNotifier,
        *,
        poll_interval: float = 0.1,
        heartbeat: float = 15.0,
        checkpoint_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self.poll_interval = poll_interval
        self.heartbeat = heartbeat
        self.checkpoint_interval = checkpoint_interval
        self._clock = clock

    def current_position(self, tenant_id: str) -> int:
        """The position of a subscriber that wants only events written from now on."""
        return self._store.log_size(tenant_id) - 1

    def compile(self, selection: Selection) -> Node | None:
        """The selection's condition, built once per stream (so a bad query is a 400 before
        the stream starts, not a broken stream)."""
        return selection.condition()

    async def items(
        self,
        tenant_id: str,
        selection: Selection,
        after: int,
        where: Node | None = None,
    ) -> AsyncGenerator[StreamItem, None]:
        """Everything after position ``after`` that ``selection`` matches, then live, forever.

        Args:
            where: ``compile(selection)``.

        The iterator ends only when its consumer stops (a disconnect cancels it).
        """
        cursor = _Cursor(after)
        now = self._clock()
        last_sent = now
        next_look = now  # for a checkpoint: at once, then every checkpoint_interval
        while True:
            version = self._notifier.version(tenant_id)
            query = selection.in_log_order(after_seq=cursor.position, limit=BATCH, where=where)
            page = await self._read(tenant_id, query)
            for event in page.events:
                yield StreamEvent(event)
            full = cursor.advance(page)
            now = self._clock()
            if page.events:
                last_sent = now
            if now >= next_look:
                next_look = now + self.checkpoint_interval
                cursor.offer(await asyncio.to_thread(self._store.latest_checkpoint, tenant_id))
            caught_up = cursor.take_checkpoint()
            if caught_up is not None:
                yield caught_up
                last_sent = now
            if full:
                continue  # more is waiting: read on before sleeping
            if now - last_sent >= self.heartbeat:
                yield Heartbeat()
                last_sent = now
            wake_in = min(self.poll_interval, last_sent + self.heartbeat - now, next_look - now)
            await self._notifier.wait(tenant_id, version, max(wake_in, 0.0))

    async def _read(self, tenant_id: str, query: EventQuery) -> Page:
        # The default executor, not the request thread pool: idle streams never starve routes.
        return await asyncio.to_thread(self._store.list_events, tenant_id, query)


class _Cursor:
    """A stream's position, and the checkpoint it will announce once caught up with it."""

    def __init__(self, position: int) -> None:
        self.position = position
        self._pending: StoredCheckpoint | None = None
        self._announced = -1

    def advance(self, page: Page) -> bool:
        """Move past ``page``; True if the page was full (more may follow at once)."""
        if page.events:
            self.position = page.events[-1].seq
        if len(page.events) == BATCH:
            return True
        # A short page saw every matching event below the log size read in its snapshot.
        self.position = max(self.position, page.log_size - 1)
        return False

    def offer(self, checkpoint: StoredCheckpoint | None) -> None:
        if checkpoint is not None and checkpoint.size > max(self._announced, 0):
            self._pending = checkpoint

    def take_checkpoint(self) -> StreamCheckpoint | None:
        pending = self._pending
        if pending is None or pending.size - 1 > self.position:
            return None
        self._pending = None
        self._announced = pending.size
        return StreamCheckpoint(pending, self.position)
