"""The batch loggers' rules, with no waiting and no I/O but the spool file: options, the
buffer, and the outbox (what happens to events that could not be delivered).

``BatchLogger`` (a thread) and ``AsyncBatchLogger`` (an asyncio task) share these; only how
they wait differs (``batch.py``).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._base import MAX_BATCH, new_key
from ._models import event_body
from ._spool import Spool, may_pass
from .errors import AuditError, InvalidArgumentError, RateLimitError, TransportError

__all__ = ["Buffer", "ErrorCallback", "Failures", "Options", "Outbox", "retry_pause"]

log = logging.getLogger("trailkeep.client")

#: ``on_error(error, events)``: the events that could not be written, and why.
ErrorCallback = Callable[[AuditError, list[dict[str, Any]]], None]
Failures = list[tuple[AuditError, list[dict[str, Any]]]]


@dataclass(slots=True)
class Options:
    batch_size: int = 500
    flush_interval: float = 1.0
    max_buffer: int = 10_000
    block: bool = True
    block_timeout: float | None = None
    max_retries: int = 5
    on_error: ErrorCallback | None = None
    close_timeout: float = 5.0
    spool: str | os.PathLike[str] | None = None
    spool_max_events: int = 100_000
    spool_retry_interval: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise InvalidArgumentError(f"batch_size must be 1..{MAX_BATCH}, got {self.batch_size}")
        if self.max_buffer < self.batch_size:
            raise InvalidArgumentError("max_buffer must hold at least one batch")
        if self.close_timeout < 0:
            raise InvalidArgumentError(f"close_timeout must be >= 0, got {self.close_timeout}")


def retry_pause(error: AuditError, attempt: int) -> float:
    """Seconds before retrying a batch: the server's ``Retry-After``, else backoff with jitter."""
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        return min(error.retry_after, 60.0)
    return min(0.5 * 2.0**attempt, 8.0) * random.uniform(0.5, 1.0)


def close_timed_out(timeout: float) -> TransportError:
    return TransportError(
        f"not delivered within the batch logger's close timeout ({timeout:g} s)",
        code="CLOSE_TIMEOUT",
    )


class Buffer:
    """The buffer's state and rules, with no waiting and no I/O (callers hold their lock)."""

    def __init__(self, options: Options, clock: Callable[[], float]) -> None:
        self.options = options
        self._clock = clock
        self._events: deque[tuple[float, dict[str, Any]]] = deque()  # (buffered at, event)
        self.in_flight: list[dict[str, Any]] = []
        self.closed = False
        self.flushing = False
        self.sent = 0
        self.failed = 0

    def __len__(self) -> int:
        return len(self._events)

    @property
    def full(self) -> bool:
        return len(self._events) + len(self.in_flight) >= self.options.max_buffer

    @property
    def idle(self) -> bool:
        return not self._events and not self.in_flight

    def add(self, event: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
        body = event_body(event, fields)
        body.setdefault("idempotency_key", new_key())
        if self.options.spool is not None:
            # A spooled event may reach the server hours later: it happened now.
            body.setdefault("timestamp", datetime.now(UTC).isoformat().replace("+00:00", "Z"))
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
        self.in_flight = [self._events.popleft()[1] for _ in range(count)]
        return self.in_flight

    def drain(self) -> list[dict[str, Any]]:
        """Everything held (in flight and buffered), emptied: for a close that timed out."""
        held = [*self.in_flight, *(event for _, event in self._events)]
        self._events.clear()
        self.in_flight = []
        return held

    def settle(self, delivered: int, lost: int) -> None:
        self.sent += delivered
        self.failed += lost
        self.in_flight = []
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


class Outbox:
    """Where undeliverable events go: the spool (when configured and the failure may pass),
    else ``on_error``; and the close deadline after which nothing more is sent."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.spool = Spool(options.spool, options.spool_max_events) if options.spool else None
        self.deadline: float | None = None
        self.next_replay = 0.0

    def close_by(self, timeout: float | None) -> float:
        """Start the close clock (idempotent); the seconds it allows."""
        limit = self.options.close_timeout if timeout is None else timeout
        if self.deadline is None:
            self.deadline = time.monotonic() + limit
        return limit

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def time_left(self) -> float | None:
        return None if self.deadline is None else max(self.deadline - time.monotonic(), 0.0)

    def divert(self, failures: Failures) -> tuple[Failures, int]:
        """Spool what may pass; return what is left to report and how many were spooled."""
        if self.spool is None:
            return failures, 0
        left: Failures = []
        spooled = 0
        for error, events in failures:
            rejected = self.spool.append(events) if may_pass(error) else events
            spooled += len(events) - len(rejected)
            if rejected:
                left.append((error, rejected))
        return left, spooled

    def replay_in(self) -> float | None:
        """Seconds until the spool should be sent again, or None when there is nothing."""
        if self.spool is None or not len(self.spool) or self.deadline is not None:
            return None
        return max(self.next_replay - time.monotonic(), 0.0)

    def replayed(self, loaded: int, kept: list[dict[str, Any]]) -> None:
        assert self.spool is not None
        self.spool.replace(loaded, kept)
        self.next_replay = time.monotonic() + self.options.spool_retry_interval if kept else 0.0
