"""BatchLogger and AsyncBatchLogger: batching, retries without duplicates, bounded memory."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from tests.client.conftest import BASE_URL, SyncASGITransport
from tests.conftest import Keys
from trailkeep.client import (
    AsyncClient,
    AuditError,
    BufferFullError,
    Client,
    ServerError,
    ValidationError,
)

BATCH = "/v1/events/batch"


def stored_events(transport: httpx.BaseTransport, keys: Keys) -> list[dict[str, Any]]:
    with Client(BASE_URL, token=keys.reader, transport=transport) as reader:
        return list(reader.iter_events(sort="asc", page_size=1000))


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class LoseFirstAnswer(httpx.BaseTransport):
    """The app, except that the first batch's answer is lost after the server stored it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path == BATCH:
            self.batches.append(len(orjson.loads(request.content)["events"]))
            if len(self.batches) == 1:
                raise httpx.ReadError("connection reset after the server wrote the batch")
        return response


class Gate(httpx.BaseTransport):
    """Holds every request until opened: a server that does not answer."""

    def __init__(self) -> None:
        self.open = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.open.wait(5)
        events = orjson.loads(request.content)["events"]
        return httpx.Response(201, json={"events": events})


class TestDelivery:
    """Events are sent in batches by size, by age, on flush and on close."""

    def test_retry_after_a_lost_answer_never_duplicates(
        self, sync_transport: SyncASGITransport, acme: Keys
    ) -> None:
        transport = LoseFirstAnswer(sync_transport)
        with (
            Client(BASE_URL, token=acme.writer, transport=transport) as tk,
            tk.batch_logger(batch_size=5, flush_interval=0.05) as logger,
        ):
            for i in range(12):
                logger.log(action=f"e{i}")
        assert logger.sent == 12
        assert transport.batches[0] == transport.batches[1]  # the lost batch was sent again
        events = stored_events(sync_transport, acme)
        assert sorted(e["action"] for e in events) == sorted(f"e{i}" for i in range(12))
        assert len({e["idempotency_key"] for e in events}) == 12

    def test_asks_for_minimal_answers(self, sync_transport: SyncASGITransport, acme: Keys) -> None:
        """The logger keeps nothing of the stored events, so it asks not to be sent them."""
        answers: list[tuple[str | None, dict[str, Any]]] = []

        class Record(httpx.BaseTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                response = sync_transport.handle_request(request)
                if request.url.path == BATCH:
                    response.read()
                    answers.append((request.headers.get("Prefer"), response.json()))
                return response

        with (
            Client(BASE_URL, token=acme.writer, transport=Record()) as tk,
            tk.batch_logger(batch_size=2, flush_interval=60) as logger,
        ):
            logger.log(action="a")
            logger.log(action="b")
        assert logger.sent == 2
        ((prefer, answer),) = answers
        assert prefer == "return=minimal"
        assert [set(e) for e in answer["events"]] == [{"id", "seq", "hash", "received_at"}] * 2
        assert [e["action"] for e in stored_events(sync_transport, acme)] == ["a", "b"]

    def test_by_size_then_on_flush(self, sync_transport: SyncASGITransport, acme: Keys) -> None:
        with (
            Client(BASE_URL, token=acme.writer, transport=sync_transport) as tk,
            tk.batch_logger(batch_size=3, flush_interval=60) as logger,
        ):
            for i in range(7):
                logger.log({"action": "a", "metadata": {"i": i}})
            wait_until(lambda: logger.sent == 6)
            time.sleep(0.05)
            assert logger.sent == 6  # the seventh waits for its batch to fill or age
            assert logger.flush(timeout=3)
            assert logger.sent == 7

    def test_by_age(self, sync_transport: SyncASGITransport, acme: Keys) -> None:
        with (
            Client(BASE_URL, token=acme.writer, transport=sync_transport) as tk,
            tk.batch_logger(batch_size=100, flush_interval=0.05) as logger,
        ):
            logger.log(action="lonely")
            wait_until(lambda: logger.sent == 1)

    def test_client_close_flushes(self, sync_transport: SyncASGITransport, acme: Keys) -> None:
        tk = Client(BASE_URL, token=acme.writer, transport=sync_transport)
        logger = tk.batch_logger(batch_size=100, flush_interval=60)
        logger.log(action="a", idempotency_key="mine")
        logger.log(action="b")
        tk.close()
        keys = [e["idempotency_key"] for e in stored_events(sync_transport, acme)]
        assert keys[0] == "mine"
        assert keys[1].startswith("tk-")
        with pytest.raises(AuditError, match="closed"):
            logger.log(action="late")

    def test_needs_an_action(self, sync_transport: SyncASGITransport, acme: Keys) -> None:
        with (
            Client(BASE_URL, token=acme.writer, transport=sync_transport) as tk,
            tk.batch_logger() as logger,
            pytest.raises(ValueError, match="action"),
        ):
            logger.log(actor_id="u-1")


class TestFailures:
    """What cannot be written goes to on_error, and only that."""

    def test_after_retries(self) -> None:
        failures: list[tuple[AuditError, list[dict[str, Any]]]] = []
        calls: list[int] = []

        def unavailable(request: httpx.Request) -> httpx.Response:
            calls.append(1)
            return httpx.Response(503, json={"error": {"code": "UNAVAILABLE", "message": "x"}})

        transport = httpx.MockTransport(unavailable)
        with (
            Client(BASE_URL, token="t", transport=transport) as tk,
            tk.batch_logger(max_retries=1, on_error=lambda e, b: failures.append((e, b))) as logger,
        ):
            logger.log(action="a")
            logger.log(action="b")
        ((error, events),) = failures
        assert isinstance(error, ServerError)
        assert [e["action"] for e in events] == ["a", "b"]
        assert (logger.sent, logger.failed, len(calls)) == (0, 2, 2)

    def test_invalid_event_singled_out(self, sync_transport: SyncASGITransport, acme: Keys) -> None:
        failures: list[tuple[AuditError, list[dict[str, Any]]]] = []
        with (
            Client(BASE_URL, token=acme.writer, transport=sync_transport) as tk,
            tk.batch_logger(batch_size=10, on_error=lambda e, b: failures.append((e, b))) as logger,
        ):
            for outcome in ("success", "failure", "maybe", "unknown"):
                logger.log(action="a", outcome=outcome)
        ((error, events),) = failures
        assert isinstance(error, ValidationError)
        assert [e["outcome"] for e in events] == ["maybe"]
        stored = stored_events(sync_transport, acme)
        assert [e["outcome"] for e in stored] == ["success", "failure", "unknown"]


class TestBoundedMemory:
    """A full buffer makes log() wait or raise, never grow."""

    def test_raise_when_full(self) -> None:
        gate = Gate()
        with Client(BASE_URL, token="t", transport=gate) as tk:
            logger = tk.batch_logger(batch_size=1, max_buffer=2, flush_interval=0, block=False)
            logger.log(action="in-flight")
            logger.log(action="buffered")
            with pytest.raises(BufferFullError):
                logger.log(action="one too many")
            gate.open.set()
            logger.close()
        assert logger.sent == 2

    def test_wait_then_raise(self) -> None:
        gate = Gate()
        with Client(BASE_URL, token="t", transport=gate) as tk:
            logger = tk.batch_logger(batch_size=1, max_buffer=1, block_timeout=0.1)
            logger.log(action="in-flight")
            started = time.monotonic()
            with pytest.raises(BufferFullError):
                logger.log(action="waits")
            assert time.monotonic() - started >= 0.1
            gate.open.set()
            logger.log(action="room again")  # blocks until the first is written
            logger.close()
        assert logger.sent == 2


class LoseFirstAnswerAsync(httpx.AsyncBaseTransport):
    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.batches = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path == BATCH:
            self.batches += 1
            if self.batches == 1:
                raise httpx.ReadError("lost")
        return response


class TestAsyncBatchLogger:
    """The asyncio variant keeps the same promises."""

    @pytest.mark.asyncio
    async def test_retry_never_duplicates(
        self, app: FastAPI, sync_transport: SyncASGITransport, acme: Keys
    ) -> None:
        transport = LoseFirstAnswerAsync(app)
        async with AsyncClient(BASE_URL, token=acme.writer, transport=transport) as tk:
            async with tk.batch_logger(batch_size=4, flush_interval=0.05) as logger:
                for i in range(10):
                    await logger.log(action=f"e{i}")
            assert logger.sent == 10
        events = stored_events(sync_transport, acme)
        assert sorted(e["action"] for e in events) == sorted(f"e{i}" for i in range(10))

    @pytest.mark.asyncio
    async def test_flush_and_full(self) -> None:
        release = threading.Event()

        async def slow(request: httpx.Request) -> httpx.Response:
            while not release.is_set():
                await asyncio.sleep(0.01)
            return httpx.Response(201, json=orjson.loads(request.content))

        transport = httpx.MockTransport(slow)
        async with AsyncClient(BASE_URL, token="t", transport=transport) as tk:
            logger = tk.batch_logger(batch_size=1, max_buffer=1, block=False, flush_interval=0)
            await logger.log(action="a")
            with pytest.raises(BufferFullError):
                await logger.log(action="b")
            release.set()
            await logger.flush()
            assert logger.sent == 1
        assert logger.failed == 0
