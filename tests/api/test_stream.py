"""GET /v1/stream: the live stream, in-process (the app driven directly, see ``sse.py``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from tests.api.sse import Received, read_stream
from tests.conftest import Keys
from trailkeep.api.app import create_app
from trailkeep.api.services import Services
from trailkeep.client.verify import verify_event
from trailkeep.merkle import open_checkpoint
from trailkeep.settings import Settings

pytestmark = pytest.mark.asyncio


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Fast heartbeats and checkpoint looks, so the tests need not wait."""
    return settings.model_copy(
        update={
            "stream_heartbeat": 0.3,
            "stream_checkpoint_interval": 0.05,
            "stream_poll_interval": 0.05,
        }
    )


@pytest.fixture
def app(settings: Settings, services: Services) -> FastAPI:
    return create_app(settings, services)


async def write(client: httpx.AsyncClient, keys: Keys, *events: dict[str, Any]) -> list[Any]:
    resp = await client.post(
        "/v1/events/batch", json={"events": list(events)}, headers=keys.auth("writer")
    )
    assert resp.status_code == 201, resp.text
    return list(resp.json()["events"])


def count(kind: str, n: int) -> Any:
    return lambda r: len(r.of(kind)) >= n


class TestDelivery:
    """Events arrive in log order as `event: event` messages whose id is their seq."""

    async def test_live_events_after_subscribing(
        self, app: FastAPI, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        await write(client, acme, {"action": "before"}, {"action": "before"})

        async def publish() -> None:
            await write(client, acme, *({"action": f"live{i}"} for i in range(3)))

        got = await read_stream(app, acme.auth("reader"), until=count("event", 3), during=publish)
        assert got.status == 200
        assert got.headers["content-type"].startswith("text/event-stream")
        assert got.seqs == [2, 3, 4]
        assert [m.id for m in got.of("event")] == ["2", "3", "4"]
        stored = (await client.get("/v1/events?sort=asc", headers=acme.auth("reader"))).json()
        assert got.events == stored["events"][2:]

    async def test_from_the_start(
        self, app: FastAPI, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        await write(client, acme, *({"action": "a"} for _ in range(4)))
        got = await read_stream(
            app, acme.auth("reader"), [("after_seq", "-1")], until=count("event", 4)
        )
        assert got.seqs == [0, 1, 2, 3]

    async def test_a_batch_larger_than_one_read(
        self, app: FastAPI, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        for _ in range(2):
            await write(client, acme, *({"action": "bulk"} for _ in range(400)))
        got = await read_stream(
            app, acme.auth("reader"), [("after_seq", "-1")], until=count("event", 800)
        )
        assert got.seqs == list(range(800))

    async def test_filters_as_in_the_list(
        self, app: FastAPI, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        await write(
            client, acme,
            {"action": "login", "actor": {"id": "u-1"}},
            {"action": "login", "actor": {"id": "u-2"}},
            {"action": "logout", "actor": {"id": "u-1"}},
            {"action": "login", "actor": {"id": "u-1"}, "timestamp": "2020-01-01"},
            {"action": "login", "actor": {"id": "u-1"}},
        )  # fmt: skip
        params = [("after_seq", "-1"), ("action", "login"), ("actor.id", "u-1"),
                  ("start", "2025-01-01")]  # fmt: skip
        got = await read_stream(app, acme.auth("reader"), params, until=count("event", 2))
        assert got.seqs == [0, 4]

    async def test_search_query(self, app: FastAPI, client: httpx.AsyncClient, acme: Keys) -> None:
        await write(
            client, acme,
            {"action": "doc.edit", "message": "Bob edited the Q3 report"},
            {"action": "doc.edit", "message": "Alice edited the Q4 plan"},
            {"action": "login", "message": "Bob logged in"},
        )  # fmt: skip
        params = [("after_seq", "-1"), ("q", "bob AND action:doc.edit")]
        got = await read_stream(app, acme.auth("reader"), params, until=count("event", 1))
        assert got.seqs == [0]

    async def test_bad_query_before_the_stream(self, client: httpx.AsyncClient, acme: Keys) -> None:
        resp = await client.get("/v1/stream?q=(unclosed", headers=acme.auth("reader"))
        assert resp.status_code == 400
        assert resp.json()["error"]["code"] == "INVALID_QUERY"


class TestResume:
    """Reconnecting with Last-Event-ID (or after_seq) misses nothing and repeats nothing."""

    async def test_last_event_id_no_gap_no_duplicate(
        self, app: FastAPI, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        await write(client, acme, *({"action": f"e{i}"} for i in range(5)))
        first = await read_stream(
            app, acme.auth("reader"), [("after_seq", "-1")], until=count("event", 3)
        )
        last_id = first.of("event")[-1].id
        assert last_id is not None
        await write(client, acme, *({"action": f"f{i}"} for i in range(3)))  # while away
        headers = {**acme.auth("reader"), "Last-Event-ID": last_id}
        # The reconnection repeats the original query: Last-Event-ID wins over after_seq.
        second = await read_stream(app, headers, [("after_seq", "-1")], until=lambda r: 7 in r.seqs)
        assert first.seqs + second.seqs == list(range(8))

    async def test_opening_message_names_the_position(
        self, app: FastAPI, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        await write(client, acme, {"action": "a"}, {"action": "a"})
        got = await read_stream(app, acme.auth("reader"), until=lambda r: bool(r.messages))
        opening = got.messages[0]
        assert (opening.id, opening.retry, opening.data) == ("1", 1000, "")  # "from now": 1

    async def test_checkpoint_positions_skip_what_was_scanned(
        self, app: FastAPI, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        await write(client, acme, {"action": "x"}, *({"action": "y"} for _ in range(5)))
        services.log.sign_pending()
        params = [("after_seq", "-1"), ("action", "x")]
        first = await read_stream(app, acme.auth("reader"), params, until=count("checkpoint", 1))
        (checkpoint,) = first.of("checkpoint")
        assert checkpoint.id == "5"  # every x below 6 was sent: resume after 5
        await write(client, acme, {"action": "x"})
        headers = {**acme.auth("reader"), "Last-Event-ID": checkpoint.id}
        second = await read_stream(app, headers, [("action", "x")], until=count("event", 1))
        assert first.seqs == [0]
        assert second.seqs == [6]

    @pytest.mark.parametrize(
        "header",
        [
            pytest.param("x", id="not-a-number"),
            pytest.param("-2", id="below--1"),
            pytest.param("9" * 25, id="beyond-int64"),
        ],
    )
    async def test_bad_last_event_id(
        self, client: httpx.AsyncClient, acme: Keys, header: str
    ) -> None:
        resp = await client.get(
            "/v1/stream", headers={**acme.auth("reader"), "Last-Event-ID": header}
        )
        assert resp.status_code == 400
        assert "Last-Event-ID" in resp.json()["error"]["message"]


class TestCheckpoints:
    """A checkpoint message comes only once every matching event below its size was sent."""

    async def test_checkpoint_covers_what_was_delivered(
        self, app: FastAPI, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        events = await write(client, acme, *({"action": "a" if i % 2 else "b"} for i in range(6)))
        services.log.sign_pending()
        params = [("after_seq", "-1"), ("action", "a")]
        got = await read_stream(app, acme.auth("reader"), params, until=count("checkpoint", 1))
        (message,) = got.of("checkpoint")
        data = orjson.loads(message.data)
        key = services.log.signer.verifier()
        checkpoint = open_checkpoint(data["checkpoint"], key)
        assert data["size"] == checkpoint.size == 6
        assert checkpoint.origin == "test.trailkeep/acme"
        before = got.messages[: got.messages.index(message)]
        assert [orjson.loads(m.data)["seq"] for m in before if m.event == "event"] == [1, 3, 5]
        assert {e["seq"] for e in events if e["action"] == "a"} == {1, 3, 5}
        proof = (
            await client.get(f"/v1/events/{events[1]['id']}/proof", headers=acme.auth("reader"))
        ).json()
        assert verify_event(proof, key).size == 6

    async def test_newer_checkpoints_announced_as_they_are_signed(
        self, app: FastAPI, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        await write(client, acme, {"action": "a"})
        services.log.sign_pending()

        async def grow() -> None:
            await asyncio.sleep(0.1)
            await write(client, acme, {"action": "a"}, {"action": "a"})
            services.log.sign_pending()

        got = await read_stream(
            app, acme.auth("reader"), [("after_seq", "-1")],
            until=count("checkpoint", 2), during=grow,
        )  # fmt: skip
        sizes = [orjson.loads(m.data)["size"] for m in got.of("checkpoint")]
        assert sizes == [1, 3]


class TestWaking:
    """A write through this process wakes streams at once; other writers are polled for."""

    async def test_a_write_here_wakes_the_stream_without_polling(
        self, app: FastAPI, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        services.streams.poll_interval = 30.0
        services.streams.heartbeat = 30.0
        services.streams.checkpoint_interval = 30.0
        written_at: list[float] = []

        async def publish() -> None:
            await asyncio.sleep(0.2)  # let the stream go to sleep first
            written_at.append(time.monotonic())
            await write(client, acme, {"action": "now"})

        got = await read_stream(app, acme.auth("reader"), until=count("event", 1), during=publish)
        assert got.seqs == [0]
        # Polling would take the whole 30 s interval; a third of it leaves room for a busy machine
        assert time.monotonic() - written_at[0] < services.streams.poll_interval / 3

    async def test_a_write_elsewhere_is_found_by_polling(
        self, app: FastAPI, acme: Keys, services: Services, settings: Settings
    ) -> None:
        other = Services.build(settings)  # another process's services on the same database

        async def publish() -> None:
            await other.events.ingest("acme", [{"action": "elsewhere"}], batch=False)

        try:
            got = await read_stream(
                app, acme.auth("reader"), until=count("event", 1), during=publish
            )
        finally:
            other.close()
        assert [e["action"] for e in got.events] == ["elsewhere"]


class TestKeepalive:
    """An idle stream sends `: keepalive` comments, and ends when the client leaves."""

    async def test_keepalive(self, app: FastAPI, acme: Keys) -> None:
        got = await read_stream(app, acme.auth("reader"), until=lambda r: r.keepalives >= 2)
        assert got.keepalives >= 2
        assert got.body.startswith(b"retry: 1000\n")
        assert got.finished  # the disconnect ended the app's response


class TestIsolation:
    """A stream never shows another tenant's events."""

    async def test_other_tenant_events_never_appear(
        self, app: FastAPI, client: httpx.AsyncClient, acme: Keys, globex: Keys
    ) -> None:
        await write(client, globex, {"action": "secret"})
        await write(client, acme, {"action": "mine"})

        async def publish() -> None:
            await write(client, globex, {"action": "secret"}, {"action": "secret"})
            await write(client, acme, {"action": "mine"})

        got: Received = await read_stream(
            app, acme.auth("reader"), [("after_seq", "-1")],
            until=count("event", 2), during=publish,
        )  # fmt: skip
        assert [(e["tenant_id"], e["action"], e["seq"]) for e in got.events] == [
            ("acme", "mine", 0),
            ("acme", "mine", 1),
        ]


class TestAuth:
    """The stream needs a reader credential; errors are the usual JSON."""

    @pytest.mark.parametrize(
        ("role", "status"),
        [pytest.param(None, 401, id="no-credential"), pytest.param("writer", 403, id="writer")],
    )
    async def test_refused(
        self, client: httpx.AsyncClient, acme: Keys, role: str | None, status: int
    ) -> None:
        resp = await client.get("/v1/stream", headers=acme.auth(role) if role else {})
        assert resp.status_code == status
        assert set(resp.json()["error"]) == {"code", "message"}

    async def test_bad_time(self, client: httpx.AsyncClient, acme: Keys) -> None:
        resp = await client.get("/v1/stream?start=yesterdayish", headers=acme.auth("reader"))
        assert resp.status_code == 400
        assert resp.json()["error"]["code"] == "INVALID_TIME"
