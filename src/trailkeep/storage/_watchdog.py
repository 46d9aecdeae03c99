"""One thread that interrupts SQLite reads past their deadline.

``sqlite3.Connection.interrupt()`` is safe from any thread and needs nothing from the reading
thread, unlike a progress handler, which takes the GIL back every few thousand VM steps of
every read and so slows the whole process under many concurrent reads.
"""

from __future__ import annotations

import heapq
import itertools
import sqlite3
import threading
import time

__all__ = ["Watchdog"]

#: How often an interrupt is repeated while the read it targets is still running.
_REPEAT_SECONDS = 0.01


class Watchdog:
    """Interrupts each watched connection whose read runs past its deadline.

    A connection is interrupted only while it is watched: ``unwatch`` (under the same lock)
    ends that, so a late interrupt never reaches the connection's next read. An interrupt
    lands only on a running statement, so it is repeated until the read ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._watched: dict[int, sqlite3.Connection] = {}
        self._fired: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, conn: sqlite3.Connection, seconds: float) -> int:
        """Interrupt ``conn`` in ``seconds`` unless ``unwatch``ed first; returns a ticket."""
        ticket = next(self._ids)
        with self._lock:
            self._watched[ticket] = conn
            heapq.heappush(self._heap, (time.monotonic() + seconds, ticket))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sqlite-watchdog", daemon=True
                )
                self._thread.start()
            self._lock.notify()
        return ticket

    def unwatch(self, ticket: int) -> bool:
        """Stop watching; True if the deadline passed and the read was interrupted."""
        with self._lock:
            self._watched.pop(ticket, None)
            if ticket in self._fired:
                self._fired.discard(ticket)
                return True
            return False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()

    def _run(self) -> None:
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                while self._heap and (self._heap[0][1] not in self._watched):
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._lock.wait()
                    continue
                deadline, ticket = self._heap[0]
                if deadline > now:
                    self._lock.wait(deadline - now)
                    continue
                heapq.heappop(self._heap)
                self._fired.add(ticket)
                self._watched[ticket].interrupt()
                # An interrupt between two statements of the read is lost: repeat it until the
                # read ends.
                heapq.heappush(self._heap, (now + _REPEAT_SECONDS, ticket))
