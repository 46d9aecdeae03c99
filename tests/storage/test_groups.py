"""Group commit's take: everything waiting, and a busy writer's short wait for more."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

from trailkeep.storage._groups import Linger, take_group


@dataclass
class _Job:
    events: list[object] = field(default_factory=lambda: [object()])


def _queue(*jobs: _Job | None) -> queue.SimpleQueue[_Job | None]:
    q: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
    for job in jobs:
        q.put(job)
    return q


def _later(q: queue.SimpleQueue[_Job | None], item: _Job | None) -> None:
    """Put ``item`` a little later, from another thread: after the taker found the queue
    empty (a taker that does not wait has returned by then)."""
    timer = threading.Timer(0.05, q.put, (item,))
    timer.daemon = True
    timer.start()


def test_takes_everything_waiting_up_to_the_bound() -> None:
    a, b, c = _Job(), _Job(), _Job()
    q = _queue(a, b, c)
    jobs, stop = take_group(q, 2)
    assert (jobs, stop) == ([a, b], False)
    assert take_group(q, 2) == ([c], False)


def test_an_idle_writer_does_not_wait() -> None:
    """Not busy: the lone job is taken alone, although a long linger is configured (a wait
    would block here: nothing else ever arrives)."""
    linger = Linger(seconds=3600, enough=64)
    job = _Job()
    assert take_group(_queue(job), 2_000, linger) == ([job], False)
    assert linger.busy is False


def test_a_group_of_several_jobs_makes_the_writer_busy() -> None:
    linger = Linger(seconds=0.001, enough=64)
    a, b = _Job(), _Job()
    take_group(_queue(a, b), 2_000, linger)
    assert linger.busy is True
    take_group(_queue(_Job()), 2_000, linger)  # alone, nothing arrived: idle again
    assert linger.busy is False


def test_jobs_left_waiting_make_the_writer_busy() -> None:
    linger = Linger(seconds=0.001, enough=64)
    q = _queue(_Job(), _Job())
    take_group(q, 1, linger)
    assert linger.busy is True


def test_a_busy_writer_waits_for_the_write_on_its_way() -> None:
    linger = Linger(seconds=30, enough=2, busy=True)
    first, second = _Job(), _Job()
    q = _queue(first)
    _later(q, second)
    jobs, stop = take_group(q, 2_000, linger)
    assert (jobs, stop) == ([first, second], False)


def test_a_busy_writer_stops_waiting_at_enough_events() -> None:
    """``enough`` reached: the rest is taken only if already waiting (a 1-hour linger would
    block this test if the wait went on)."""
    linger = Linger(seconds=3600, enough=3, busy=True)
    jobs = [_Job(), _Job(), _Job()]
    assert take_group(_queue(*jobs), 2_000, linger) == (jobs, False)


def test_the_stop_sentinel_ends_a_wait() -> None:
    linger = Linger(seconds=3600, enough=64, busy=True)
    first = _Job()
    q = _queue(first)
    _later(q, None)
    assert take_group(q, 2_000, linger) == ([first], True)


def test_a_busy_writer_waits_no_longer_than_its_linger() -> None:
    """Nothing else arrives: the group commits after the linger, with what it has."""
    linger = Linger(seconds=0.01, enough=64, busy=True)
    first = _Job()
    assert take_group(_queue(first), 2_000, linger) == ([first], False)
    assert linger.busy is False
