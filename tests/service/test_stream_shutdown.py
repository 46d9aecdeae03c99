"""A stopping service ends every open stream with a ``Reconnect`` at the subscriber's position."""

from __future__ import annotations

import asyncio

import pytest

from trailkeep.api.services import Services
from trailkeep.service.selection import Selection
from trailkeep.service.stream import Reconnect, StreamEvent, StreamItem


@pytest.mark.asyncio
class TestShutDown:
    """``StreamService.shut_down`` wakes waiting streams, which end with ``Reconnect``."""

    async def test_waiting_streams_end(self, services: Services) -> None:
        services.tenants.create_tenant("acme")
        await services.events.ingest("acme", [{"action": "a"}, {"action": "b"}], batch=True)
        streams = services.streams
        streams.heartbeat = 3600.0  # nothing else would wake them
        streams.poll_interval = 3600.0
        streams.checkpoint_interval = 3600.0

        async def drain() -> list[StreamItem]:
            return [item async for item in streams.items("acme", Selection(), -1)]

        subscribers = [asyncio.create_task(drain()) for _ in range(3)]
        await asyncio.sleep(0.3)  # both events delivered; now each waits for more
        assert not any(task.done() for task in subscribers)
        streams.shut_down()
        for received in await asyncio.wait_for(asyncio.gather(*subscribers), timeout=5):
            assert [type(item) for item in received] == [StreamEvent, StreamEvent, Reconnect]
            assert received[-1] == Reconnect(position=1)

    async def test_streams_opened_after_end_at_once(self, services: Services) -> None:
        services.tenants.create_tenant("acme")
        services.streams.shut_down()
        items = [item async for item in services.streams.items("acme", Selection(), -1)]
        assert items == [Reconnect(position=-1)]
