"""The read gate: heavy reads run a few at a time and wait without a thread; cheap reads never
wait for them."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.storage.queries import event_query
from tests.storage.test_store import make_tenant, new_event
from trailkeep.errors import QueryTimeoutError
from trailkeep.query.ast import Contains
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.service.events import EventService, Limits
from trailkeep.service.reads import HEAVY_NICE, ReadGate
from trailkeep.service.stores import open_store


@pytest.mark.asyncio
class TestReadGate:
    """At most ``max_heavy`` heavy reads at once; the rest wait their turn, cheap ones do not."""

    async def test_cheap_reads_pass_busy_heavy_slots(self) -> None:
        gate = ReadGate(max_heavy=1, wait=5.0)
        release = threading.Event()
        heavy = asyncio.create_task(gate.run(lambda: release.wait(5.0), heavy=True))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        assert await gate.run(lambda: "cheap", heavy=False) == "cheap"
        assert time.monotonic() - started < 1.0
        release.set()
        assert await heavy is True

    async def test_heavy_reads_queue_then_time_out(self) -> None:
        gate = ReadGate(max_heavy=1, wait=0.1)
        release = threading.Event()
        first = asyncio.create_task(gate.run(lambda: release.wait(5.0), heavy=True))
        await asyncio.sleep(0.05)
        with pytest.raises(QueryTimeoutError):
            await gate.run(lambda: "second", heavy=True)
        release.set()
        await first
        assert await gate.run(lambda: "third", heavy=True) == "third"

    async def test_at_most_max_heavy_run_at_once(self) -> None:
        gate = ReadGate(max_heavy=2, wait=5.0)
        running, most = 0, 0
        lock = threading.Lock()

        def read() -> None:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            time.sleep(0.05)
            with lock:
                running -= 1

        await asyncio.gather(*(gate.run(read, heavy=True) for _ in range(6)))
        assert most == 2

    @pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice: Linux")
    async def test_heavy_reads_run_at_a_lower_cpu_priority(self) -> None:
        gate = ReadGate(max_heavy=2, wait=5.0)

        def nice() -> int:
            return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

        cheap = await gate.run(nice, heavy=False)
        assert await gate.run(nice, heavy=True) == min(19, cheap + HEAVY_NICE)
        assert await gate.run(nice, heavy=False) == cheap  # cheap reads' threads untouched

    async def test_a_heavy_read_holds_its_slot_until_done_even_if_abandoned(self) -> None:
        gate = ReadGate(max_heavy=1, wait=0.2)
        release = threading.Event()
        first = asyncio.create_task(gate.run(lambda: release.wait(5.0), heavy=True))
        await asyncio.sleep(0.05)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        with pytest.raises(QueryTimeoutError):  # its read still runs: no second one beside it
            await gate.run(lambda: "second", heavy=True)
        release.set()
        assert await gate.run(lambda: "third", heavy=True) == "third"

    async def test_needs_a_slot(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            ReadGate(max_heavy=0)


class TestWhatIsHeavy:
    """A read is cheap only when one index walk that stops after the page answers it."""

    @pytest.mark.parametrize(
        ("query", "heavy"),
        [
            pytest.param(EventQuery(limit=1), False, id="everything"),
            pytest.param(event_query({"action": ["login"]}), False, id="one-indexed-filter"),
            pytest.param(event_query({"actor.id": ["u1"]}, start="2026-11-01"), False, id="range"),
            pytest.param(event_query(q="action:login"), False, id="q-as-filter"),
            pytest.param(event_query({"category": ["users"]}), True, id="unindexed-filter"),
            pytest.param(event_query({"action": ["a", "b"]}), True, id="several-values"),
            pytest.param(event_query({"action": ["a"], "actor.id": ["u"]}), True, id="two-filters"),
            pytest.param(event_query(q="metadata.model:gpt-4o"), True, id="json-search"),
            pytest.param(event_query(q="denied"), True, id="free-text"),
            pytest.param(EventQuery(offset=5000), True, id="deep-offset"),
            pytest.param(EventQuery(order_by=("metadata", "k")), True, id="custom-order"),
            pytest.param(EventQuery(Contains((("message",),), "x")), True, id="substring"),
        ],
    )
    def test_classified(self, tmp_path: Path, query: EventQuery, heavy: bool) -> None:
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}", sqlite_synchronous="NORMAL")
        try:
            assert EventService(store, Limits()).is_heavy(query) is heavy
        finally:
            store.close()


@pytest.mark.asyncio
class TestAsyncReads:
    """The async reads answer as the blocking ones do."""

    async def test_same_answers(self, tmp_path: Path) -> None:
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}", sqlite_synchronous="NORMAL")
        try:
            make_tenant(store)
            store.append("acme", [new_event(action=f"a{i % 3}") for i in range(9)]).result()
            events = EventService(store, Limits(), gate=ReadGate(2, wait=5.0))
            query = event_query({"action": ["a1"]}, limit=10)
            assert await events.aselect("acme", query) == events.select("acme", query)
            assert await events.acount("acme", query) == 3
            assert await events.adistinct("acme", ("action",), EventQuery(), 5) == [
                ("a0", 3),
                ("a1", 3),
                ("a2", 3),
            ]
            page = await events.alist(
                "acme", filters={}, start=None, end=None, sort=Sort.DESC, limit=4, cursor=None
            )
            assert len(page.events) == 4
            assert page.next_cursor is not None
        finally:
            store.close()
