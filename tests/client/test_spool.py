"""A batch logger whose server is down: a bounded close, and a durable spool (issue 19, item 5)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.client.conftest import BASE_URL, SyncASGITransport
from tests.client.test_batch import stored_events, wait_until
from tests.conftest import Keys
from trailkeep.client import AsyncClient, AuditError, Client, InvalidArgumentError

BATCH = "/v1/events/batch"


class Switch(httpx.BaseTransport):
    """The app behind a switch: while down, every request fails to connect."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.up = False
        self.lose_next_answer = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused")
        response = self.inner.handle_request(request)
        if request.url.path == BATCH and self.lose_next_answer:
            self.lose_next_answer = False
            raise httpx.ReadError("connection reset after the server wrote the batch")
        return response


class DownAsync(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")


Failures = list[tuple[AuditError, list[dict[str, Any]]]]


def spooled(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


class TestCloseTimeout:
    """close() returns within close_timeout (plus a small grace) when the server is down."""

    @pytest.mark.parametrize(
        "close_timeout", [pytest.param(0.5, id="0.5s"), pytest.param(1.5, id="1.5s")]
    )
    def test_bounded_and_reported(self, close_timeout: float) -> None:
        failures: Failures = []
        tk = Client(BASE_URL, token="t", transport=Switch(httpx.MockTransport(lambda r: r)))
        logger = tk.batch_logger(
            close_timeout=close_timeout, on_error=lambda e, ev: failures.append((e, ev))
        )
        for i in range(3):
            logger.log(action=f"a{i}")
        started = time.monotonic()
        logger.close()
        took = time.monotonic() - started
        tk.close()
        assert took < close_timeout + 0.7, took
        assert sum(len(events) for _, events in failures) == 3
        assert {e.code for e, _ in failures} <= {"CONNECT", "CLOSE_TIMEOUT"}
        assert logger.failed == 3

    @pytest.mark.asyncio
    async def test_async_bounded(self) -> None:
        failures: Failures = []
        async with AsyncClient(BASE_URL, token="t", transport=DownAsync()) as tk:
            logger = tk.batch_logger(
                close_timeout=0.5, on_error=lambda e, ev: failures.append((e, ev))
            )
            await logger.log(action="a")
            started = time.monotonic()
            await logger.aclose()
            assert time.monotonic() - started < 1.2
        assert sum(len(events) for _, events in failures) == 1


class TestSpool:
    """Undeliverable events wait in a local file and are replayed, once, when the server is back."""

    def test_outage_then_replay(
        self, tmp_path: Path, sync_transport: SyncASGITransport, acme: Keys
    ) -> None:
        path = tmp_path / "spool" / "audit.jsonl"
        switch = Switch(sync_transport)
        failures: Failures = []
        with Client(BASE_URL, token=acme.writer, transport=switch) as tk:
            logger = tk.batch_logger(spool=path, close_timeout=0.5, flush_interval=0.05,
                                     on_error=lambda e, ev: failures.append((e, ev)))  # fmt: skip
            for i in range(10):
                logger.log(action=f"down.{i}")
            logger.close()
        assert failures == []
        held = spooled(path)
        assert [e["action"] for e in held] == [f"down.{i}" for i in range(10)]
        assert all(e["idempotency_key"].startswith("tk-") and e["timestamp"] for e in held)
        assert path.stat().st_mode & 0o777 == 0o600
        switch.up = True
        switch.lose_next_answer = True  # the first replay is stored but its answer lost
        with Client(BASE_URL, token=acme.writer, transport=switch) as tk:
            logger = tk.batch_logger(spool=path, spool_retry_interval=0.05, flush_interval=0.05)
            wait_until(lambda: logger.spooled == 0, timeout=10)
            logger.log(action="up")
            logger.close()
        stored = stored_events(sync_transport, acme)
        assert sorted(e["action"] for e in stored) == sorted(
            [f"down.{i}" for i in range(10)] + ["up"]
        )
        by_key = {e["idempotency_key"]: e for e in stored}
        assert [by_key[e["idempotency_key"]]["timestamp"][:19] for e in held] == [
            e["timestamp"][:19] for e in held
        ]
        assert not path.exists()

    def test_bounded(self, tmp_path: Path) -> None:
        path = tmp_path / "spool.jsonl"
        failures: Failures = []
        with Client(BASE_URL, token="t", transport=Switch(httpx.MockTransport(lambda r: r))) as tk:
            logger = tk.batch_logger(spool=path, spool_max_events=4, close_timeout=0.3,
                                     on_error=lambda e, ev: failures.append((e, ev)))  # fmt: skip
            for i in range(10):
                logger.log(action=f"a{i}")
            logger.close()
        assert len(spooled(path)) == 4
        assert sum(len(events) for _, events in failures) == 6
        assert logger.failed == 6

    def test_refused_events_are_not_spooled(
        self, tmp_path: Path, sync_transport: SyncASGITransport, acme: Keys
    ) -> None:
        path = tmp_path / "spool.jsonl"
        failures: Failures = []
        with Client(BASE_URL, token=acme.writer, transport=sync_transport) as tk:
            logger = tk.batch_logger(spool=path, on_error=lambda e, ev: failures.append((e, ev)))
            logger.log(action="ok")
            logger.log(action="bad", outcome="maybe")
            logger.close()
        assert [ev[0]["action"] for _, ev in failures] == ["bad"]
        assert not path.exists()


class TestErrorsAreAuditErrors:
    """Every error the SDK raises is an AuditError, even one caught before sending."""

    @pytest.mark.parametrize(
        "options", [pytest.param({"batch_size": 0}, id="batch-size"),
                    pytest.param({"close_timeout": -1}, id="close-timeout"),
                    pytest.param({"spool": "x", "spool_max_events": 0}, id="spool-size")],
    )  # fmt: skip
    def test_bad_options(self, options: dict[str, Any]) -> None:
        with (
            Client(BASE_URL, token="t", transport=httpx.MockTransport(lambda r: r)) as tk,
            pytest.raises(InvalidArgumentError),
        ):
            tk.batch_logger(**options)

    def test_no_action(self, sync_transport: SyncASGITransport, acme: Keys) -> None:
        with Client(BASE_URL, token=acme.writer, transport=sync_transport) as tk:
            logger = tk.batch_logger()
            with pytest.raises(AuditError, match="needs an action") as caught:
                logger.log(actor_id="u-1")
            assert isinstance(caught.value, ValueError)  # code that caught ValueError still works
            assert caught.value.code == "INVALID_ARGUMENT"
            with pytest.raises(AuditError, match="needs an action"):
                tk.log(actor_id="u-1")
            logger.close()


class TestAsyncSpool:
    """AsyncBatchLogger spools the same way, and replays on its next start."""

    @pytest.mark.asyncio
    async def test_outage_then_replay(
        self, tmp_path: Path, app: Any, sync_transport: SyncASGITransport, acme: Keys
    ) -> None:
        path = tmp_path / "spool.jsonl"
        async with AsyncClient(BASE_URL, token=acme.writer, transport=DownAsync()) as tk:
            logger = tk.batch_logger(spool=path, close_timeout=0.3)
            for i in range(4):
                await logger.log(action=f"down.{i}")
            await logger.aclose()
        assert len(spooled(path)) == 4
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient(BASE_URL, token=acme.writer, transport=transport) as tk:
            logger = tk.batch_logger(spool=path, spool_retry_interval=0.05, flush_interval=0.05)
            await logger.log(action="up")
            for _ in range(200):
                if logger.spooled == 0:
                    break
                await asyncio.sleep(0.02)
            await logger.aclose()
        actions = sorted(e["action"] for e in stored_events(sync_transport, acme))
        assert actions == sorted([f"down.{i}" for i in range(4)] + ["up"])
        assert not path.exists()
