"""SDK fixtures: the app in-process behind both clients, a sync bridge for ``Client``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI

from tests.conftest import Keys
from trailkeep.api.app import create_app
from trailkeep.api.services import Services
from trailkeep.client import AsyncClient, Client
from trailkeep.settings import Settings

BASE_URL = "http://trailkeep.test"


class SyncASGITransport(httpx.BaseTransport):
    """Serves a blocking ``Client`` from the ASGI app, run on a portal's event loop thread."""

    def __init__(self, app: FastAPI, portal: BlockingPortal) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def run() -> httpx.Response:
            response = await self._inner.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return self._portal.call(run)


@pytest.fixture
def app(settings: Settings, services: Services) -> FastAPI:
    return create_app(settings, services)


@pytest.fixture
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as running:
        yield running


@pytest.fixture
def sync_transport(app: FastAPI, portal: BlockingPortal) -> SyncASGITransport:
    return SyncASGITransport(app, portal)


class Either:
    """One face for both clients, so each test runs against ``Client`` and ``AsyncClient``:
    ``await sdk("list", action="a")`` calls the method (a blocking one in a worker thread),
    ``await sdk.collect("iter_events")`` drains an iterator of either kind."""

    def __init__(self, client: Client | AsyncClient) -> None:
        self.client = client
        self.is_async = isinstance(client, AsyncClient)

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.client, name)
        if self.is_async:
            return await method(*args, **kwargs)
        return await asyncio.to_thread(method, *args, **kwargs)

    async def collect(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        if self.is_async:
            return [item async for item in getattr(self.client, name)(*args, **kwargs)]
        return await asyncio.to_thread(lambda: list(getattr(self.client, name)(*args, **kwargs)))


@pytest_asyncio.fixture(params=["sync", "async"])
async def make_sdk(
    request: pytest.FixtureRequest, app: FastAPI, sync_transport: SyncASGITransport
) -> AsyncIterator[Any]:
    """``make_sdk(token, **options)`` → an ``Either`` over the kind of client the param names."""
    made: list[Client | AsyncClient] = []

    def make(token: str, **options: Any) -> Either:
        client: Client | AsyncClient
        if request.param == "sync":
            client = Client(BASE_URL, token=token, transport=sync_transport, **options)
        else:
            transport = httpx.ASGITransport(app=app)
            client = AsyncClient(BASE_URL, token=token, transport=transport, **options)
        made.append(client)
        return Either(client)

    yield make
    for client in made:
        if isinstance(client, AsyncClient):
            await client.close()
        else:
            client.close()


@pytest.fixture
def sdk(make_sdk: Any, acme: Keys) -> Either:
    """Either client with acme's admin key (it may write and read)."""
    result: Either = make_sdk(acme.admin)
    return result
