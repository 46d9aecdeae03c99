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
  to ``on_error(error, events)``; without a callback it is logged (``trailkeep.client``);
- with ``spool=PATH``, events that failed for a reason that may pass (server down, timeout,
  429, 5xx) go to a bounded, fsynced local file instead and are sent again, with the same
  idempotency keys, when the server answers (``_spool.py``);
- closing is bounded: ``close()`` keeps retrying for at most ``close_timeout`` seconds
  (default 5), then spools (or reports) what is left and returns.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._base import RetryPolicy
from ._batch_rules import (
    Buffer,
    ErrorCallback,
    Failures,
    Options,
    Outbox,
    close_timed_out,
    retry_pause,
)
from ._spool import may_pass
from .errors import AuditError, BufferFullError

if TYPE_CHECKING:
    from ._async import AsyncClient
    from ._sync import Client

__all__ = ["AsyncBatchLogger", "BatchLogger", "ErrorCallback"]

#: One attempt per request: the loggers retry themselves, with waits that ``close`` cuts short.
_ONE_ATTEMPT = RetryPolicy(max_retries=0)


def _full() -> BufferFullError:
    return BufferFullError("the batch logger's buffer is full; the server is slow or unreachable")


def _split(failures: Failures) -> tuple[Failures, list[dict[str, Any]]]:
    """Failures that are final, and the events of those worth another try."""
    final = [(e, events) for e, events in failures if not may_pass(e)]
    again = [event for e, events in failures if may_pass(e) for event in events]
    return final, again


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
        close_timeout: longest seconds ``close()`` spends delivering what is left (default 5).
        spool: a file for events that could not be delivered for a reason that may pass;
            they are sent again (same idempotency keys) once the server answers. Off by default.
        spool_max_events: most events the spool holds (then ``on_error`` as without one).
        spool_retry_interval: seconds between tries to send the spool while the server is down.

    Use it as a context manager, or call ``close()``: both flush. It is also flushed (for up
    to ``close_timeout`` seconds) when the interpreter exits.
    """

    def __init__(self, client: Client, **options: Any) -> None:
        self._client = client
        self._buffer = Buffer(Options(**options), time.monotonic)
        self._outbox = Outbox(self._buffer.options)
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="trailkeep-batch", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    @property
    def sent(self) -> int:
        """Events written so far (spooled events count once the spool delivers them)."""
        return self._buffer.sent

    @property
    def failed(self) -> int:
        """Events handed to ``on_error`` so far."""
        return self._buffer.failed

    @property
    def spooled(self) -> int:
        """Events waiting in the spool file now."""
        return len(self._outbox.spool) if self._outbox.spool is not None else 0

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
        """Send everything buffered now and wait until it is written (or failed, or spooled).

        Returns False if ``timeout`` seconds passed first.
        """
        with self._cond:
            self._buffer.flushing = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._buffer.idle, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the thread, within ``timeout`` seconds (default ``close_timeout``).

        What is still undelivered then goes to the spool, or to ``on_error``. Idempotent.
        """
        with self._cond:
            limit = self._outbox.close_by(timeout)
            self._buffer.closed = True
            self._cond.notify_all()
        self._thread.join(limit + 0.5)
        atexit.unregister(self._at_exit)
        if self._thread.is_alive():  # stuck in a request that does not answer
            with self._cond:
                held = self._buffer.drain()
            if held:  # idempotency keys make spooling an in-flight batch safe
                left, _ = self._outbox.divert([(close_timed_out(limit), held)])
                self._buffer.report(left)
                self._buffer.failed += sum(len(events) for _, events in left)

    def _at_exit(self) -> None:
        self.close()

    def __enter__(self) -> BatchLogger:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _next_batch(self) -> list[dict[str, Any]] | None:
        """The next batch to send; ``[]`` when the spool is due for a replay; None to stop."""
        with self._cond:
            while True:
                wait = self._buffer.wait_time()
                if wait == 0.0:
                    return self._buffer.take()
                if wait is None and self._buffer.closed:
                    return None
                replay = self._outbox.replay_in()
                if replay == 0.0:
                    return []
                self._cond.wait(min((w for w in (wait, replay) if w is not None), default=None))

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                self._replay()
                continue
            failures = self._deliver(batch)
            left, spooled = self._outbox.divert(failures)
            self._buffer.report(left)
            lost = sum(len(events) for _, events in left)
            with self._cond:
                if self._buffer.in_flight is batch:  # else a timed-out close took it
                    self._buffer.settle(len(batch) - lost - spooled, lost)
                self._cond.notify_all()

    def _send(self, events: list[dict[str, Any]]) -> Failures:
        try:
            return self._client._run(self._client._op_deliver(events, _ONE_ATTEMPT))
        except Exception as exc:  # never let the thread die with events in hand
            return [
                (AuditError(f"unexpected {type(exc).__name__}: {exc}", code="INTERNAL"), events)
            ]

    def _deliver(self, events: list[dict[str, Any]]) -> Failures:
        """Send, retrying what may pass up to ``max_retries`` times or until the close deadline."""
        final: Failures = []
        for attempt in range(self._buffer.options.max_retries + 1):
            if self._outbox.past_deadline():
                return [*final, (close_timed_out(self._buffer.options.close_timeout), events)]
            failures = self._send(events)
            done, events = _split(failures)
            final += done
            if not events:
                return final
            if attempt == self._buffer.options.max_retries or not self._pause(
                retry_pause(failures[-1][0], attempt)
            ):
                break
        return [*final, *((e, evs) for e, evs in failures if may_pass(e))]

    def _pause(self, seconds: float) -> bool:
        """Wait before a retry; False (at once) if the close deadline would pass first."""
        left = self._outbox.time_left()
        if left is not None and left <= seconds:
            return False
        end = time.monotonic() + seconds
        with self._cond:
            while (now := time.monotonic()) < end:
                left = self._outbox.time_left()
                if left is not None and left <= end - now:
                    return False
                self._cond.wait(end - now)  # close() wakes us to re-check its deadline
        return True

    def _replay(self) -> None:
        """Send the spool in batches; keep what still fails for a reason that may pass."""
        assert self._outbox.spool is not None
        events = self._outbox.spool.load()
        size = self._buffer.options.batch_size
        kept: list[dict[str, Any]] = []
        for start in range(0, len(events), size):
            chunk = events[start : start + size]
            if kept or self._outbox.deadline is not None:
                kept += chunk  # the server is still away, or we are closing: try later
                continue
            final, again = _split(self._send(chunk))
            self._buffer.report(final)
            lost = sum(len(evs) for _, evs in final)
            kept += again
            with self._cond:
                self._buffer.sent += len(chunk) - lost - len(again)
                self._buffer.failed += lost
        self._outbox.replayed(len(events), kept)


class AsyncBatchLogger:
    """``BatchLogger`` for an ``AsyncClient``: an asyncio task; ``await log(...)`` waits only
    when the buffer is full. Use ``async with`` or ``await aclose()`` (both flush, within
    ``close_timeout``). Takes the same options, ``spool`` included."""

    def __init__(self, client: AsyncClient, **options: Any) -> None:
        self._client = client
        self._buffer = Buffer(Options(**options), time.monotonic)
        self._outbox = Outbox(self._buffer.options)
        self._cond = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    @property
    def sent(self) -> int:
        return self._buffer.sent

    @property
    def failed(self) -> int:
        return self._buffer.failed

    @property
    def spooled(self) -> int:
        return len(self._outbox.spool) if self._outbox.spool is not None else 0

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
        """Send everything buffered now and wait until it is written (or failed, or spooled)."""
        self._ensure_task()
        async with self._cond:
            self._buffer.flushing = True
            self._cond.notify_all()
            await self._cond.wait_for(lambda: self._buffer.idle)

    async def aclose(self, timeout: float | None = None) -> None:
        """Flush, then stop the task, within ``timeout`` (default ``close_timeout``) seconds;
        what is still undelivered goes to the spool, or to ``on_error``. Idempotent."""
        async with self._cond:
            limit = self._outbox.close_by(timeout)
            self._buffer.closed = True
            self._cond.notify_all()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), limit + 0.5)
        except TimeoutError:
            self._task.cancel()
            held = self._buffer.drain()
            if held:
                left, _ = self._outbox.divert([(close_timed_out(limit), held)])
                self._buffer.report(left)
                self._buffer.failed += sum(len(events) for _, events in left)

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
                replay = self._outbox.replay_in()
                if replay == 0.0:
                    return []
                with contextlib.suppress(TimeoutError):
                    waits = [w for w in (wait, replay) if w is not None]
                    await asyncio.wait_for(self._cond.wait(), min(waits, default=None))

    async def _run(self) -> None:
        while (batch := await self._next_batch()) is not None:
            if not batch:
                await self._replay()
                continue
            failures = await self._deliver(batch)
            left, spooled = self._outbox.divert(failures)
            self._buffer.report(left)
            lost = sum(len(events) for _, events in left)
            async with self._cond:
                self._buffer.settle(len(batch) - lost - spooled, lost)
                self._cond.notify_all()

    async def _send(self, events: list[dict[str, Any]]) -> Failures:
        try:
            return await self._client._run(self._client._op_deliver(events, _ONE_ATTEMPT))
        except Exception as exc:
            return [
                (AuditError(f"unexpected {type(exc).__name__}: {exc}", code="INTERNAL"), events)
            ]

    async def _deliver(self, events: list[dict[str, Any]]) -> Failures:
        final: Failures = []
        for attempt in range(self._buffer.options.max_retries + 1):
            if self._outbox.past_deadline():
                return [*final, (close_timed_out(self._buffer.options.close_timeout), events)]
            failures = await self._send(events)
            done, events = _split(failures)
            final += done
            if not events:
                return final
            if attempt == self._buffer.options.max_retries or not await self._pause(
                retry_pause(failures[-1][0], attempt)
            ):
                break
        return [*final, *((e, evs) for e, evs in failures if may_pass(e))]

    async def _pause(self, seconds: float) -> bool:
        left = self._outbox.time_left()
        if left is not None and left <= seconds:
            return False
        end = time.monotonic() + seconds
        async with self._cond:
            while (now := time.monotonic()) < end:
                left = self._outbox.time_left()
                if left is not None and left <= end - now:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), end - now)
        return True

    async def _replay(self) -> None:
        assert self._outbox.spool is not None
        events = self._outbox.spool.load()
        size = self._buffer.options.batch_size
        kept: list[dict[str, Any]] = []
        for start in range(0, len(events), size):
            chunk = events[start : start + size]
            if kept or self._outbox.deadline is not None:
                kept += chunk
                continue
            final, again = _split(await self._send(chunk))
            self._buffer.report(final)
            lost = sum(len(evs) for _, evs in final)
            kept += again
            self._buffer.sent += len(chunk) - lost - len(again)
            self._buffer.failed += lost
        self._outbox.replayed(len(events), kept)
