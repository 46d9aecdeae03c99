"""Group commit: taking every write waiting in a writer's queue, up to a bound."""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

__all__ = ["take_group"]


class _Job(Protocol):
    @property
    def events(self) -> Sequence[object]: ...


J = TypeVar("J", bound=_Job)


def take_group(
    jobs_in: queue.SimpleQueue[J | None], max_events: int | Callable[[], int]
) -> tuple[list[J], bool]:
    """Block for one job, then take whatever else is waiting until ``max_events``.

    ``max_events`` may be a function, asked once the first job has arrived.
    Returns the jobs to commit together, and whether the stop sentinel (None) was met: the
    caller commits the group, then stops.
    """
    first = jobs_in.get()
    if first is None:
        return [], True
    limit = max_events if isinstance(max_events, int) else max_events()
    jobs, count = [first], len(first.events)
    while count < limit:
        try:
            more = jobs_in.get_nowait()
        except queue.Empty:
            break
        if more is None:
            return jobs, True
        jobs.append(more)
        count += len(more.events)
    return jobs, False
