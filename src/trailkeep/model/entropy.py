"""Random bytes from the kernel's CSPRNG, drawn a few kilobytes at a time.

``os.urandom`` is one ``getrandom()`` system call, and CPython releases the GIL around it.
Ingest needs random bytes for every request (an event id, the salts of its fields): one call
per request on the event loop thread means one GIL release and retake per request, and under
load the retake waits for the writer thread's switch interval (up to 5 ms) every time, a
convoy that stalls the loop. ``random_bytes`` serves requests from one reservoir refilled by
a single large draw, so a system call (and a GIL release) happens once every few hundred
requests.

The bytes are the kernel's, unchanged, and none is handed out twice: each call takes the next
unused slice. A forked child drops the reservoir it inherited (it would otherwise hand out the
same bytes as its parent).
"""

from __future__ import annotations

import os
import threading
from typing import Final

__all__ = ["random_bytes"]

#: Bytes drawn per refill; a request larger than this is drawn on its own.
RESERVOIR: Final = 64 * 1024


class _Reservoir:
    __slots__ = ("at", "lock", "pool")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pool = b""
        self.at = 0

    def take(self, size: int) -> bytes:
        if size > RESERVOIR:
            return os.urandom(size)
        with self.lock:
            at = self.at
            if at + size > len(self.pool):
                self.pool, at = os.urandom(RESERVOIR), 0
            self.at = at + size
            return self.pool[at : at + size]

    def forget(self) -> None:
        self.lock = threading.Lock()
        self.pool, self.at = b"", 0


_reservoir = _Reservoir()
os.register_at_fork(after_in_child=_reservoir.forget)


def random_bytes(size: int) -> bytes:
    """``size`` bytes from the kernel CSPRNG (as ``os.urandom``), never handed out before."""
    return _reservoir.take(size)
