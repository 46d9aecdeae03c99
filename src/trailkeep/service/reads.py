"""Bounded concurrency for heavy reads, so that no reader can starve the others.

A heavy read (a search the indexes cannot answer by walking, a count, facets, a deep offset)
can take seconds; run in the request thread pool, a few dozen of them hold every thread (and
every database connection) while a cheap ``GET /v1/events?limit=1`` of another tenant queues
behind them. The gate lets at most ``max_heavy`` heavy reads run at once; the others wait for
a slot *without* holding a thread, for at most ``wait`` seconds (then ``QueryTimeoutError``).
Cheap reads go straight to a thread.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

from trailkeep.errors import QueryTimeoutError

__all__ = ["ReadGate"]

T = TypeVar("T")


class ReadGate:
    """Runs blocking reads in threads, heavy ones at most ``max_heavy`` at a time.

    Args:
        max_heavy: most heavy reads running at once (keep it below the read connections,
            so cheap reads always find one).
        wait: seconds a heavy read waits for its turn before ``QueryTimeoutError``.
    """

    def __init__(self, max_heavy: int = 2, wait: float = 10.0) -> None:
        if max_heavy < 1:
            raise ValueError(f"max_heavy must be at least 1, not {max_heavy}")
        self.max_heavy = max_heavy
        self.wait = wait
        # asyncio primitives belong to one loop; a process may run several (tests do).
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.max_heavy)
        return slots

    async def run(self, read: Callable[[], T], *, heavy: bool) -> T:
        """``read()`` in a worker thread; a heavy one first waits for a slot.

        Raises:
            QueryTimeoutError: no heavy slot came free within ``wait`` seconds.
        """
        if not heavy:
            return await anyio.to_thread.run_sync(read)
        slots = self._semaphore()
        try:
            await asyncio.wait_for(slots.acquire(), self.wait)
        except TimeoutError:
            raise QueryTimeoutError(
                f"{self.max_heavy} expensive queries are running and this one waited"
                f" {self.wait:g} s for its turn; retry, or narrow the query"
            ) from None
        try:
            return await anyio.to_thread.run_sync(read)
        finally:
            slots.release()
