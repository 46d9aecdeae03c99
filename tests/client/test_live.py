"""The SDK against a real ``trailkeep serve`` process: the live stream, its resumption after
dropped connections, and the errors of an unreachable server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import httpx
import pytest

from tests.fast_server import fast_server
from tests.process import Server, free_port
from trailkeep.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConnectError,
    StreamCheckpoint,
)

FAST = {
    "TRAILKEEP_STREAM_HEARTBEAT": "0.5",
    "TRAILKEEP_STREAM_CHECKPOINT_INTERVAL": "0.1",
    "TRAILKEEP_CHECKPOINT_INTERVAL": "0.1",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with fast_server(tmp_path_factory.mktemp("live"), FAST) as running:
        yield running


def unique() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def publish(server: Server, action: str, count: int, pause: float = 0.01) -> threading.Thread:
    """Write ``count`` events of ``action`` in the background, one by one."""

    def run() -> None:
        with Client(server.url, token=server.tokens["writer"]) as writer:
            for i in range(count):
                writer.log(action=action, metadata={"i": i})
                time.sleep(pause)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


class _Cut(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, after: int) -> None:
        self._inner, self._after = inner, after

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self._inner:
            seen += chunk.count(b"event: event")
            if seen >= self._after:
                yield chunk[: len(chunk) // 2]  # half a message: it must be ignored
                raise httpx.RemoteProtocolError("connection cut by the test")
            yield chunk

    def close(self) -> None:
        self._inner.close()


class CuttingTransport(httpx.BaseTransport):
    """Real HTTP, but the first ``cuts`` stream responses break after ``after`` events."""

    def __init__(self, cuts: int, after: int) -> None:
        self._inner = httpx.HTTPTransport()
        self.cuts, self.after = cuts, after
        self.resumed_from: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.url.path != "/v1/stream":
            return response
        self.resumed_from.append(request.headers.get("last-event-id"))
        if self.cuts == 0:
            return response
        self.cuts -= 1
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Cut(response.stream, self.after),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


class _AsyncCut(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, after: int) -> None:
        self._inner, self._after = inner, after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._inner:
            seen += chunk.count(b"event: event")
            if seen >= self._after:
                yield chunk[: len(chunk) // 2]
                raise httpx.ReadError("connection cut by the test")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class AsyncCuttingTransport(httpx.AsyncBaseTransport):
    def __init__(self, cuts: int, after: int) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.cuts, self.after = cuts, after
        self.resumed_from: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path != "/v1/stream":
            return response
        self.resumed_from.append(request.headers.get("last-event-id"))
        if self.cuts == 0:
            return response
        self.cuts -= 1
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_AsyncCut(response.stream, self.after),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def numbers(events: list[dict[str, Any]]) -> list[int]:
    return [e["metadata"]["i"] for e in events]


class TestStream:
    """The live stream delivers every event once, in order, across dropped connections."""

    def test_resumes_after_drops_with_no_gap_and_no_duplicate(self, server: Server) -> None:
        action = unique()
        transport = CuttingTransport(cuts=3, after=4)
        received: list[dict[str, Any]] = []
        with Client(server.url, token=server.tokens["reader"], transport=transport) as reader:
            stream = reader.stream(action=action, timeout=15)
            writer = publish(server, action, 30)
            for event in stream:
                received.append(event)
                if len(received) == 30:
                    break
            writer.join()
        assert numbers(received) == list(range(30))
        seqs = [e["seq"] for e in received]
        assert seqs == sorted(set(seqs))
        assert len(transport.resumed_from) == 4  # three cuts, three resumptions
        assert transport.resumed_from[0] is None
        assert all(position is not None for position in transport.resumed_from[1:])

    @pytest.mark.asyncio
    async def test_async_resumes_after_drops(self, server: Server) -> None:
        action = unique()
        transport = AsyncCuttingTransport(cuts=2, after=3)
        received: list[dict[str, Any]] = []
        async with AsyncClient(
            server.url, token=server.tokens["reader"], transport=transport
        ) as reader:
            writer = publish(server, action, 12)
            async with aclosing(reader.stream(action=action, after_seq=-1, timeout=15)) as stream:
                async for event in stream:
                    received.append(event)
                    if len(received) == 12:
                        break
            writer.join()
        assert numbers(received) == list(range(12))
        assert len(transport.resumed_from) == 3

    def test_checkpoints_verified_and_pinned(self, server: Server) -> None:
        action = unique()
        key = httpx.get(f"{server.url}/v1/log/key").text
        with Client(server.url, token=server.tokens["reader"], pin_public_key=key) as reader:
            publish(server, action, 3, pause=0).join()
            seen: list[dict[str, Any]] = []
            for item in reader.stream(action=action, after_seq=-1, checkpoints=True, timeout=10):
                if isinstance(item, StreamCheckpoint):
                    if item.size >= max(e["seq"] for e in seen) + 1:
                        break
                    continue
                seen.append(item)
            assert item.checkpoint.verified
            assert item.position >= item.size - 1
            assert len(seen) == 3  # every matching event below the checkpoint came first
            assert reader.pinned_checkpoint is not None
            assert reader.pinned_checkpoint.size >= item.size

    def test_timeout_ends_the_iteration(self, server: Server) -> None:
        with Client(server.url, token=server.tokens["reader"]) as reader:
            started = time.monotonic()
            assert list(reader.stream(action=unique(), timeout=0.6)) == []
            assert 0.5 < time.monotonic() - started < 3

    def test_bad_token_is_not_retried(self, server: Server) -> None:
        with (
            Client(server.url, token="tkc_x.tks_y") as reader,
            pytest.raises(AuthenticationError),
        ):
            next(iter(reader.stream(timeout=5)))


class TestUnreachable:
    """A server that is not there is a ConnectError naming it."""

    def test_connect_error(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        with Client(url, token="t", max_retries=0) as tk, pytest.raises(ConnectError) as caught:
            tk.list()
        assert url in caught.value.message
