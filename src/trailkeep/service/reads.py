"""Bounded concurrency for heavy reads, so that no reader can starve the others.

A heavy read (a search the indexes cannot answer by walking, a count, facets, a deep offset)
can take seconds; run in the request thread pool, a few dozen of them hold every thread (and
every database connection) while a cheap ``GET /v1/events?limit=1`` of another tenant queues
behind them. The gate lets at most ``max_heavy`` heavy reads run at once; the others wait for
a slot *without* holding a thread, for at most ``wait`` seconds (then ``QueryTimeoutError``).
Cheap reads go straight to a thread.

The heavy reads run in threads of their own, at a lower CPU priority (``HEAVY_NICE``; Linux
schedules each thread on its own, so this is per thread there, and skipped elsewhere): on a
machine with fewer free cores than running reads, two scans of a million events otherwise take
their full share of the CPU from a cheap read that needs a few milliseconds of it.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

import anyio.to_thread

from trailkeep.errors import QueryTimeoutError

__all__ = ["HEAVY_NICE", "ReadGate"]

T = TypeVar("T")

#: How much lower (in ``nice`` steps) a heavy read's thread runs than the server: at 10, the
#: scheduler gives a cheap read about nine tenths of a core it shares with a heavy one.
HEAVY_NICE: Final = 10


def _lower_priority() -> None:
    """Run the calling thread ``HEAVY_NICE`` steps nicer (Linux: ``setpriority`` of its thread
    id acts on that thread alone; a process may always lower its own priority)."""
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        nice = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, nice + HEAVY_NICE))
    except OSError:
        pass  # a sandbox may refuse it: the reads still run, at the server's priority


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
        #: The heavy reads' threads, started as needed (at most ``max_heavy``; they end when
        #: the gate is collected).
        self._threads = ThreadPoolExecutor(
            max_heavy, thread_name_prefix="heavy-read", initializer=_lower_priority
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
            context = contextvars.copy_context()
            done = asyncio.get_running_loop().run_in_executor(self._threads, context.run, read)
        except BaseException:
            slots.release()
            raise
        # The slot is free when the read is done, not when its caller stops waiting for it.
        done.add_done_callback(lambda _: slots.release())
        return await asyncio.shield(done)
