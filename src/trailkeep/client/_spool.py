"""A batch logger's durable local spool: events it could not deliver, kept for later.

Without a spool, a batch logger whose server is down hands its events to ``on_error`` (or
logs them) and they are gone. With one (opt-in: ``BatchLogger(..., spool=PATH)``), events
that failed for a reason that may pass (no connection, a timeout, 429, 5xx, the close
timeout) are appended to a JSON-lines file, fsynced, and sent again later with the
idempotency keys they already carry, so an event the server did store before its answer was
lost is never written twice.

The file is bounded (``spool_max_events``): what does not fit goes to ``on_error`` as before,
so a long outage costs disk only up to a limit the application chose. One logger owns a
spool file at a time; two live loggers must not share one.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import orjson

from .errors import AuditError, RateLimitError, ServerError, TransportError

__all__ = ["Spool", "may_pass"]


def may_pass(error: AuditError) -> bool:
    """Whether a delivery failure may succeed later unchanged (so it is worth spooling)."""
    return isinstance(error, TransportError | RateLimitError | ServerError)


class Spool:
    """A bounded JSON-lines file of undelivered events (each with its idempotency key).

    Args:
        path: the file; created (with its directory) on first use, mode 0600.
        max_events: most events held; ``append`` returns those that did not fit.
    """

    def __init__(self, path: str | os.PathLike[str], max_events: int) -> None:
        if max_events < 1:
            from .errors import InvalidArgumentError

            raise InvalidArgumentError(f"spool_max_events must be >= 1, got {max_events}")
        self.path = Path(path)
        self.max_events = max_events
        self._lock = threading.Lock()  # a close that timed out spools beside the thread
        self._count = len(self.load())

    def __len__(self) -> int:
        return self._count

    def append(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add events durably (fsync); return those that did not fit."""
        with self._lock:
            room = max(self.max_events - self._count, 0)
            kept, rejected = events[:room], events[room:]
            if kept:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                with os.fdopen(fd, "ab") as fh:
                    fh.write(b"".join(orjson.dumps(e) + b"\n" for e in kept))
                    fh.flush()
                    os.fsync(fh.fileno())
                self._count += len(kept)
            return rejected

    def load(self) -> list[dict[str, Any]]:
        """Every spooled event, oldest first (a torn last line, from a crash, is skipped)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        events = []
        for line in raw.splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                value = orjson.loads(line)
                if isinstance(value, dict):
                    events.append(value)
        return events

    def replace(self, loaded: int, kept: list[dict[str, Any]]) -> None:
        """After a replay of the first ``loaded`` events: keep ``kept`` (those still not
        delivered) and whatever was appended meanwhile; written to a new file, fsynced and
        renamed over the old one."""
        with self._lock:
            events = [*kept, *self.load()[loaded:]]
            if not events:
                self.path.unlink(missing_ok=True)
                self._count = 0
                return
            fresh = self.path.with_name(self.path.name + ".new")
            fd = os.open(fresh, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(b"".join(orjson.dumps(e) + b"\n" for e in events))
                fh.flush()
                os.fsync(fh.fileno())
            fresh.replace(self.path)
            self._count = len(events)
