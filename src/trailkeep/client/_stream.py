"""The I/O-free state of a live-stream subscription: where to resume, when to give up."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from ._base import Call
from ._sse import SSEDecoder, SSEMessage
from .errors import AuditError, ConnectError, TransportError

__all__ = ["MAX_OVERSHOOT", "StreamSession"]

#: Longest seconds a stream with a ``timeout`` may run past it (see ``overshoots``).
MAX_OVERSHOOT = 0.5


class StreamSession:
    """One subscription across any number of connections.

    Every message carries ``id:`` = the subscriber's log position; a new connection sends the
    last one as ``Last-Event-ID``, so the server resumes right after it: no gap, no duplicate.

    Args:
        params: the stream's query parameters (filters).
        after_seq: where to start (None: from now; -1: from the first event).
        timeout: total seconds after which the iteration ends quietly (None: never).
        idle_timeout: seconds without a byte (heartbeats included) before reconnecting.
        max_reconnects: consecutive failed connections before the error is raised.
    """

    def __init__(
        self,
        params: Sequence[tuple[str, str]],
        after_seq: int | None,
        *,
        timeout: float | None,
        idle_timeout: float,
        max_reconnects: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._params = list(params)
        self.last_id: str | None = None if after_seq is None else str(after_seq)
        self._clock = clock
        self._deadline = None if timeout is None else clock() + timeout
        self._idle = idle_timeout
        self._max_reconnects = max_reconnects
        self._failures = 0
        self._reconnect_ms = 1000
        self._decoder = SSEDecoder()
        self._ever_connected = False
        self._read_timeout = idle_timeout

    def call(self) -> Call:
        headers = {"Accept": "text/event-stream"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        return Call("GET", "/v1/stream", self._params, headers=headers)

    def remaining(self) -> float | None:
        return None if self._deadline is None else max(self._deadline - self._clock(), 0.0)

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def read_timeout(self) -> float:
        """The read timeout of the next connection: the idle timeout, or less near the end."""
        remaining = self.remaining()
        self._read_timeout = (
            self._idle if remaining is None else max(min(self._idle, remaining), 0.001)
        )
        return self._read_timeout

    def overshoots(self) -> bool:
        """Whether the connection's read timeout, fixed when it opened, could now carry a read
        past the deadline by more than ``MAX_OVERSHOOT`` seconds; if so the caller reconnects
        (resuming exactly where it stopped) so ``timeout`` is kept to within that."""
        remaining = self.remaining()
        return remaining is not None and self._read_timeout - remaining > MAX_OVERSHOOT

    def connected(self) -> None:
        self._ever_connected = True
        self._failures = 0
        self._decoder = SSEDecoder()  # a half-received message of the last connection is void

    def feed(self, line: str) -> SSEMessage | None:
        """A line of the response; returns an ``event`` or ``checkpoint`` message when one
        is complete (and records its position)."""
        message = self._decoder.feed(line)
        if message is None:
            return None
        if message.retry is not None:
            self._reconnect_ms = message.retry
        if message.id is not None:
            self.last_id = message.id
        return message if message.event in ("event", "checkpoint") else None

    def dropped(self, error: AuditError | None) -> float:
        """The connection failed or ended: seconds to wait before reconnecting.

        Raises:
            AuditError: the error itself when reconnecting cannot help (a 401, 403, 400...)
                or after ``max_reconnects`` consecutive failures.
        """
        if error is not None and not isinstance(error, TransportError) and (
            error.status is None or error.status < 500
        ) and error.status != 429:  # fmt: skip
            raise error
        if isinstance(error, ConnectError) and not self._ever_connected:
            raise error  # nothing to resume: a server that was never reached fails at once
        self._failures += 1
        if self._failures > self._max_reconnects:
            raise error or TransportError("the live stream keeps closing; giving up")
        # At once after a working connection dropped, then backing off from the server's hint.
        first = self._failures == 1
        pause = 0.1 if first else self._reconnect_ms / 1000 * 2 ** (self._failures - 2)
        remaining = self.remaining()
        return min(pause, 10.0) if remaining is None else min(pause, 10.0, remaining)


def decode(message: SSEMessage) -> Mapping[str, Any]:
    data: Mapping[str, Any] = orjson.loads(message.data)
    return data
