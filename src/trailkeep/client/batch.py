"""Background batch logging: buffer events, send them in batches, retry without duplicates.

``BatchLogger`` (a thread, for ``Client``) and ``AsyncBatchLogger`` (an asyncio task, for
``AsyncClient``) share the buffer rules (:class:`_Buffer`) and the delivery operation
(``BaseClient._op_deliver``); only their waiting differs.

Guarantees:

- every buffered event gets a client-generated ``idempotency_key`` unless it has one, so a
  batch retried after a lost answer is never written twice;
- a batch is sent when it reaches ``batch_size`` events, when its oldest event has waited
  ``flush_interval`` seconds, on ``flush()`` and on close;
- memory is bounded: at most ``max_buffer`` events are held (buffered or in flight). When
  full, ``log()`` waits for room (``block=True``, the default, up to ``block_timeout``) or
  raises ``BufferFullError`` at once (``block=False``): back-pressure rather than silent loss;
- a batch that fails after ``max_retries`` retries, or an event the server refuses (a
  validation failure is narrowed down to the offending events by splitting the batch), goes
  to ``on_error(error, events)``; without a callback it is logged (``trailkeep.client``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._base import MAX_BATCH, RetryPolicy, new_key
from ._models import event_body
from .errors import AuditError, BufferFullError

if TYPE_CHECKING:
    from ._async import AsyncClient
    from ._sync import Client

__all__ = ["AsyncBatchLogger", "BatchLogger", "ErrorCallback"]

log = logging.getLogger("trailkeep.client")

#: ``on_error(error, events)``: the events that could not be written, and why.
ErrorCallback = Callable[[AuditError, list[dict[str, Any]]], None]
Failures = list[tuple[AuditError, list[dict[str, Any]]]]


@dataclass(slots=True)
class _Options:
    batch_size: int = 500
    flush_interval: float = 1.0
    max_buffer: int = 10_000
    block: bool = True
    block_timeout: float | None = None
    max_retries: int = 5
    on_error: ErrorCallback | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}, got {self.batch_size}")
        if self.max_buffer < self.batch_size:
            raise ValueError("max_buffer must hold at least one batch")


class _Buffer:
    """The buffer's state and rules, with no waiting and no I/O (callers hold their lock)."""

    def __init__(self, options: _Options, clock: Callable[[], float]) -> None:
        self.options = options
        self._clock = clock
        self._events: deque[tuple[float, dict[str, Any]]] = deque()  # (buffered at, event)
        self.in_flight = 0
        self.closed = False
        self.flushing = False
        self.sent = 0
        self.failed = 0

    def __len__(self) -> int:
        return len(self._events)

    @property
    def full(self) -> bool:
        return len(self._events) + self.in_flight >= self.options.max_buffer

    @property
    def idle(self) -> bool:
        return not self._events and not self.in_flight

    def add(self, event: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
        body = event_body(event, fields)
        body.setdefault("idempotency_key", new_key())
        self._events.append((self._clock(), body))
        return body

    def wait_time(self) -> float | None:
        """Seconds until a batch is due (0: now), or None when there is nothing to send."""
        if not self._events:
            return None
        if len(self._events) >= self.options.batch_size or self.closed or self.flushing:
            return 0.0
        oldest = self._events[0][0]
        return max(oldest + self.options.flush_interval - self._clock(), 0.0)

    def take(self) -> list[dict[str, Any]]:
        count = min(len(self._events), self.options.batch_size)
        batch = [self._events.popleft()[1] for _ in range(count)]
        self.in_flight = len(batch)
        return batch

    def settle(self, batch: list[dict[str, Any]], failures: Failures) -> None:
        lost = sum(len(events) for _, events in failures)
        self.failed += lost
        self.sent += len(batch) - lost
        self.in_flight = 0
        if not self._events:
            self.flushing = False

    def report(self, failures: Failures) -> None:
        for error, events in failures:
            if self.options.on_error is None:
                log.error("trailkeep: %d audit events not written: %s", len(events), error)
                continue
            try:
                self.options.on_error(error, events)
            except Exception:
                log.exception("trailkeep: the BatchLogger's on_error callback failed")


def _full() -> BufferFullError:
    return BufferFullError("the batch logger's buffer is full; the server is slow or unreachable")


class BatchLogger:
    """Buffered, background, retrying writes for a ``Client`` (a daemon thread).

    Args:
        client: the client to write through.
        batch_size: events per request, at most 1,000.
        flush_interval: longest seconds an event waits in the buffer.
        max_buffer: most events held in memory (buffered and in flight).
        block: when full, ``log()`` waits for room; False raises ``BufferFullError`` at once.
        block_timeout: longest wait for room before ``BufferFullError`` (None: no limit).
        max_retries: retries of a failed batch (lost answers, 429, 5xx), with backoff.
        on_error: ``on_error(error, events)`` for events that could not be written.

    Use it as a context manager, or call ``close()``: both flush. It is also flushed (for up
    to 10 s) when the interpreter exits.
    """

    def __init__(self, client: Client, **options: Any) -> None:
        self._client = client
        self._buffer = _Buffer(_Options(**options), time.monotonic)
        self._retry = RetryPolicy(max_retries=self._buffer.options.max_retries, backoff=0.5)
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="trailkeep-batch", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    @property
    def sent(self) -> int:
        """Events written so far."""
        return self._buffer.sent

    @property
    def failed(self) -> int:
        """Events handed to ``on_error`` so far."""
        return self._buffer.failed

    def log(self, event: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Buffer one event (as ``Client.log`` takes it); returns at once unless full."""
        deadline = None
        if self._buffer.options.block_timeout is not None:
            deadline = time.monotonic() + self._buffer.options.block_timeout
        with self._cond:
            while self._buffer.full and not self._buffer.closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if not self._buffer.options.block or (remaining is not None and remaining <= 0):
                    raise _full()
                self._cond.wait(remaining)
            if self._buffer.closed:
                raise AuditError("the batch logger is closed", code="CLOSED")
            self._buffer.add(event, fields)
            if len(self._buffer) == 1 or self._buffer.wait_time() == 0.0:
                self._cond.notify_all()  # a first event starts the clock; a full batch is due

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything buffered now and wait until it is written (or failed).

        Returns False if ``timeout`` seconds passed first.
        """
        with self._cond:
            self._buffer.flushing = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._buffer.idle, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the thread. Idempotent."""
        with self._cond:
            self._buffer.closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        self.close(timeout=10.0)

    def __enter__(self) -> BatchLogger:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _next_batch(self) -> list[dict[str, Any]] | None:
        with self._cond:
            while True:
                wait = self._buffer.wait_time()
                if wait == 0.0:
                    return self._buffer.take()
                if wait is None and self._buffer.closed:
                    return None
                self._cond.wait(wait)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                failures = self._client._run(self._client._op_deliver(batch, self._retry))
            except Exception as exc:  # never let the thread die with events in hand
                error = AuditError(f"unexpected {type(exc).__name__}: {exc}", code="INTERNAL")
                failures = [(error, batch)]
            self._buffer.report(failures)
            with self._cond:
                self._buffer.settle(batch, failures)
                self._cond.notify_all()


class AsyncBatchLogger:
    """``BatchLogger`` for an ``AsyncClient``: an asyncio task; ``await log(...)`` waits only
    when the buffer is full. Use ``async with`` or ``await aclose()`` (both flush)."""

    def __init__(self, client: AsyncClient, **options: Any) -> None:
        self._client = client
        self._buffer = _Buffer(_Options(**options), time.monotonic)
        self._retry = RetryPolicy(max_retries=self._buffer.options.max_retries, backoff=0.5)
        self._cond = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    @property
    def sent(self) -> int:
        return self._buffer.sent

    @property
    def failed(self) -> int:
        return self._buffer.failed

    def _ensure_task(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def log(self, event: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Buffer one event; waits only for room in a full buffer."""
        self._ensure_task()
        timeout = self._buffer.options.block_timeout
        async with self._cond:
            if self._buffer.full and not self._buffer.options.block:
                raise _full()
            try:
                await asyncio.wait_for(
                    self._cond.wait_for(lambda: not self._buffer.full or self._buffer.closed),
                    timeout,
                )
            except TimeoutError:
                raise _full() from None
            if self._buffer.closed:
                raise AuditError("the batch logger is closed", code="CLOSED")
            self._buffer.add(event, fields)
            self._cond.notify_all()

    async def flush(self) -> None:
        """Send everything buffered now and wait until it is written (or failed)."""
        self._ensure_task()
        async with self._cond:
            self._buffer.flushing = True
            self._cond.notify_all()
            await self._cond.wait_for(lambda: self._buffer.idle)

    async def aclose(self) -> None:
        """Flush, then stop the task. Idempotent."""
        async with self._cond:
            self._buffer.closed = True
            self._cond.notify_all()
        if self._task is not None:
            await self._task

    async def __aenter__(self) -> AsyncBatchLogger:
        self._ensure_task()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _next_batch(self) -> list[dict[str, Any]] | None:
        async with self._cond:
            while True:
                wait = self._buffer.wait_time()
                if wait == 0.0:
                    return self._buffer.take()
                if wait is None and self._buffer.closed:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), wait)

    async def _run(self) -> None:
        while (batch := await self._next_batch()) is not None:
            try:
                failures = await self._client._run(self._client._op_deliver(batch, self._retry))
            except Exception as exc:
                error = AuditError(f"unexpected {type(exc).__name__}: {exc}", code="INTERNAL")
                failures = [(error, batch)]
            self._buffer.report(failures)
            async with self._cond:
                self._buffer.settle(batch, failures)
                self._cond.notify_all()
