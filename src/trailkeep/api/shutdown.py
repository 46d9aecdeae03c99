"""Stopping with open streams: a stop signal ends every live stream at once.

An ASGI server stops by waiting for open responses to finish (uvicorn: up to
``timeout_graceful_shutdown``), but a live stream never finishes by itself, and the lifespan
shutdown only comes after that wait. So the app hooks the stop signal itself: it chains onto
the handler the server installed (uvicorn's, which starts the graceful shutdown) and, first,
asks every stream to end with an ``event: reconnect``.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "on_stop_signal"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

Handler = Callable[[int, FrameType | None], Any]


@contextmanager
def on_stop_signal(callback: Callable[[], None]) -> Iterator[None]:
    """While the block runs, call ``callback`` on the event loop when a stop signal arrives.

    Only where a server already handles the signal (a callable handler): the server's own
    handler still runs, right after, so how it stops is unchanged. Elsewhere (not the main
    thread, or nobody handles the signal) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    installed: dict[signal.Signals, tuple[Handler, Handler]] = {}  # signal → (ours, previous)
    for sig in STOP_SIGNALS:
        previous = signal.getsignal(sig)
        if callable(previous):
            ours = _chained(loop, callback, previous)
            installed[sig] = (ours, previous)
            signal.signal(sig, ours)
    try:
        yield
    finally:
        for sig, (ours, previous) in installed.items():
            if signal.getsignal(sig) is ours:  # nobody chained onto ours meanwhile
                signal.signal(sig, previous)


def _chained(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], None], previous: Handler
) -> Handler:
    def handler(sig: int, frame: FrameType | None) -> None:
        # A signal handler may run in the middle of the loop's own code: hand over safely.
        loop.call_soon_threadsafe(callback)
        previous(sig, frame)

    return handler
