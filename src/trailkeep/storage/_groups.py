"""Group commit: taking every write waiting in a writer's queue, up to a bound."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

__all__ = ["GROUP_SIZE_BUCKETS", "GroupStats", "Linger", "group_stats", "settle", "take_group"]

#: Upper bounds (events) of the group-size histogram ``/metrics`` shows.
GROUP_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


@dataclass(slots=True)
class GroupStats:
    """What this process's writers did, for ``/metrics``: group sizes (cumulative histogram
    counts by ``GROUP_SIZE_BUCKETS``, then +Inf), and the jobs left waiting after each take."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(GROUP_SIZE_BUCKETS) + 1))
    groups: int = 0
    events: int = 0
    queue_depth: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, events: int, waiting: int) -> None:
        with self.lock:
            self.groups += 1
            self.events += events
            self.queue_depth = waiting
            for i, bound in enumerate(GROUP_SIZE_BUCKETS):
                if events <= bound:
                    self.counts[i] += 1
                    break
            else:
                self.counts[-1] += 1


_STATS = GroupStats()


def group_stats() -> GroupStats:
    """The process-wide writer statistics (every store's writer adds to them)."""
    return _STATS


class _Job(Protocol):
    @property
    def events(self) -> Sequence[object]: ...


J = TypeVar("J", bound=_Job)
T = TypeVar("T")


@dataclass(slots=True)
class Linger:
    """How long a busy writer holds a small group open for the writes on their way.

    A group's fixed cost (its transaction, the commit's pages and fsync) is most of a small
    group's: one event alone costs its writer about five times its share of a group of 16.
    Under concurrent single-event writes the writer is *busy* — its last group held several
    jobs, or left jobs waiting — and the next writes are already being prepared, so waiting
    ``seconds`` for them (until ``enough`` events) makes fewer, larger groups. A writer that
    is not busy never waits: a lone write commits at once.
    """

    seconds: float
    enough: int
    busy: bool = False


def take_group(
    jobs_in: queue.SimpleQueue[J | None],
    max_events: int | Callable[[], int],
    linger: Linger | None = None,
) -> tuple[list[J], bool]:
    """Block for one job, then take whatever else is waiting until ``max_events``; a busy
    writer's ``linger`` then waits a little for more (see ``Linger``).

    ``max_events`` may be a function, asked once the first job has arrived.
    Returns the jobs to commit together, and whether the stop sentinel (None) was met: the
    caller commits the group, then stops.
    """
    first = jobs_in.get()
    if first is None:
        return [], True
    limit = max_events if isinstance(max_events, int) else max_events()
    jobs, count = [first], len(first.events)
    stop = False
    wait_below, deadline = 0, 0.0  # events under which to wait for more, and until when
    if linger is not None and linger.busy:
        wait_below = min(limit, linger.enough)
        deadline = time.monotonic() + linger.seconds
    while count < limit:
        try:
            if count < wait_below:
                more = jobs_in.get(timeout=max(0.0, deadline - time.monotonic()))
            else:
                more = jobs_in.get_nowait()
        except queue.Empty:
            break
        if more is None:
            stop = True
            break
        jobs.append(more)
        count += len(more.events)
    waiting = jobs_in.qsize()
    if linger is not None:
        linger.busy = len(jobs) > 1 or waiting > 0
    _STATS.record(count, waiting)
    return jobs, stop


def settle(future: Future[T], result: T | BaseException) -> None:
    """Answer a write's ``future`` with its ``result`` (an exception: its failure).

    The caller may have stopped waiting: an asyncio task awaiting ``asyncio.wrap_future`` of
    it and cancelled (a client gone, ``log_async``'s request answered before its write)
    cancels it too. The outcome stands either way, and the writer thread must go on.
    """
    try:
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass
