"""Every SDK method, on ``Client`` and ``AsyncClient``, against the app in-process."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from fastapi import FastAPI

from tests.client.conftest import BASE_URL, Either
from tests.conftest import Keys
from trailkeep.api.services import Services
from trailkeep.client import (
    AsyncClient,
    Client,
    ConflictError,
    ExportInfo,
    InconsistentLogError,
    NotFoundError,
    Page,
    VerificationError,
)
from trailkeep.client.verify import verify_dump
from trailkeep.errors import IntegrityError
from trailkeep.merkle import Checkpoint, Signer

pytestmark = pytest.mark.asyncio

#: Methods that return iterators (or a logger) rather than awaitables on AsyncClient.
NOT_AWAITED = {"stream", "iter_events", "export_lines", "batch_logger"}


class TestTwoClients:
    """Client and AsyncClient have the same public methods, with the same parameters."""

    async def test_same_methods(self) -> None:
        def public(cls: type) -> dict[str, Any]:
            return {
                n: inspect.signature(f)
                for n, f in inspect.getmembers(cls, inspect.isfunction)
                if not n.startswith("_")
            }

        sync, asynchronous = public(Client), public(AsyncClient)
        assert sync.keys() == asynchronous.keys()
        for name, signature in sync.items():
            assert list(signature.parameters) == list(asynchronous[name].parameters), name
            awaited = inspect.iscoroutinefunction(getattr(AsyncClient, name))
            assert awaited == (name not in NOT_AWAITED), name


class TestWrite:
    """log and log_bulk store events; keywords fill the nested objects."""

    async def test_log_keywords_and_mapping(self, sdk: Either) -> None:
        stored = await sdk(
            "log",
            {"action": "doc.edit", "actor": {"name": "Bob"}},
            actor_id="u-1",
            target_type="document",
            outcome="success",
            timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        )
        assert stored["actor"] == {"name": "Bob", "id": "u-1"}
        assert stored["target"] == {"type": "document"}
        assert stored["timestamp"] == "2026-01-02T03:04:05.000000Z"
        assert stored["seq"] == 0
        assert (await sdk("describe", stored["id"])) == stored

    async def test_log_needs_an_action(self, sdk: Either) -> None:
        with pytest.raises(ValueError, match="action"):
            await sdk("log", actor_id="u-1")

    async def test_log_is_idempotent_with_a_key(self, sdk: Either) -> None:
        first = await sdk("log", action="a", idempotency_key="k-1")
        again = await sdk("log", action="a", idempotency_key="k-1")
        assert first["id"] == again["id"]

    async def test_log_bulk_in_batches(self, sdk: Either) -> None:
        stored = await sdk("log_bulk", [{"action": f"e{i}"} for i in range(5)], batch_size=2)
        assert [e["seq"] for e in stored] == [0, 1, 2, 3, 4]
        with pytest.raises(ValueError, match="batch_size"):
            await sdk("log_bulk", [{"action": "a"}], batch_size=1001)


class TestRead:
    """list, search, describe and iter_events take keyword filters."""

    @pytest_asyncio.fixture
    async def seeded(self, sdk: Either) -> list[dict[str, Any]]:
        events = [
            {"action": "login", "actor": {"id": "u-1"}, "timestamp": "2026-01-01"},
            {"action": "login", "actor": {"id": "u-2"}, "timestamp": "2026-01-02"},
            {"action": "logout", "actor": {"id": "u-1"}, "timestamp": "2026-01-03"},
            {"action": "login", "actor": {"id": "u-1"}, "timestamp": "2026-01-04"},
        ]
        stored: list[dict[str, Any]] = await sdk("log_bulk", events)
        return stored

    async def test_list(self, sdk: Either, seeded: list[dict[str, Any]]) -> None:
        page = await sdk("list", action="login", actor_id=["u-1", "u-2"], limit=2)
        assert isinstance(page, Page)
        assert [e["seq"] for e in page] == [3, 1]
        assert page.next_cursor is not None
        rest = await sdk("list", action="login", actor_id=["u-1", "u-2"], limit=2,
                         cursor=page.next_cursor)  # fmt: skip
        assert [e["seq"] for e in rest] == [0]
        assert rest.next_cursor is None

    async def test_times_and_sort(self, sdk: Either, seeded: list[dict[str, Any]]) -> None:
        start = datetime(2026, 1, 2)  # noqa: DTZ001 - a naive time is UTC, as the server reads it
        page = await sdk("list", start=start, end="2026-01-04", sort="asc")
        assert [e["seq"] for e in page] == [1, 2]

    async def test_search_with_filters(self, sdk: Either, seeded: list[dict[str, Any]]) -> None:
        page = await sdk("search", actor_id="u-1", sort="asc")
        assert [e["seq"] for e in page] == [0, 2, 3]

    async def test_search_language(self, sdk: Either, seeded: list[dict[str, Any]]) -> None:
        page = await sdk("search", "logout OR actor.id:u-2", sort="asc")
        assert [e["seq"] for e in page] == [1, 2]

    async def test_facets(self, sdk: Either, seeded: list[dict[str, Any]]) -> None:
        facets = await sdk("facets", actor_id="u-1", top=5)
        assert facets["total"] == 3
        counts = {f["value"]: f["count"] for f in facets["facets"]["action"]}
        assert counts == {"login": 2, "logout": 1}

    async def test_iter_events_pages(self, sdk: Either, seeded: list[dict[str, Any]]) -> None:
        events = await sdk.collect("iter_events", page_size=1, sort="asc")
        assert events == seeded

    async def test_unknown_filter(self, sdk: Either) -> None:
        with pytest.raises(TypeError, match="actor_name"):
            await sdk("list", actor_name="Bob")

    async def test_describe_unknown(self, sdk: Either) -> None:
        with pytest.raises(NotFoundError) as caught:
            await sdk("describe", "evt_nope")
        assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")


class TestExports:
    """Exports are created, counted and downloaded to files or as lines."""

    async def test_export_to_a_verifiable_file(
        self, sdk: Either, services: Services, tmp_path: Path
    ) -> None:
        await sdk("log_bulk", [{"action": "a"}, {"action": "b"}, {"action": "a"}])
        seen: list[int] = []
        info = await sdk("export", tmp_path / "all.jsonl", progress=seen.append)
        assert isinstance(info, ExportInfo)
        assert (info.size, info.events, info.format) == (3, 3, "jsonl")
        assert seen[-1] == 3
        with (tmp_path / "all.jsonl").open("rb") as fh:
            assert verify_dump(fh, services.log.signer.verifier()).events == 3
        assert not (tmp_path / "all.jsonl.part").exists()

    async def test_export_lines(self, sdk: Either) -> None:
        await sdk("log_bulk", [{"action": "a"}, {"action": "b"}, {"action": "a"}])
        lines = await sdk.collect("export_lines", format="csv", action="a")
        assert lines[0].startswith("id,seq,")
        assert [line.split(",")[1] for line in lines[1:]] == ["0", "2"]

    async def test_export_with_a_query(self, sdk: Either) -> None:
        await sdk("log_bulk", [{"action": "a"}, {"action": "b"}, {"action": "c"}])
        lines = await sdk.collect("export_lines", "a OR c", format="jsonl")
        header, *records = (orjson.loads(line) for line in lines)
        assert header["q"] == "a OR c"
        assert [r["event"]["action"] for r in records] == ["a", "c"]

    async def test_create_count_download(self, sdk: Either, tmp_path: Path) -> None:
        await sdk("log_bulk", [{"action": "a"}, {"action": "b"}])
        created = await sdk("create_export", format="json", action="b")
        assert created.events is None
        counted = await sdk("get_export", created.id, count=True)
        assert counted.events == 1
        assert await sdk("download_export", created.id, tmp_path / "b.json") == 1


class TestIntegrity:
    """Proofs and checkpoints verify; a tampered copy or a wrong key does not."""

    async def test_checkpoint_and_key(self, sdk: Either, services: Services) -> None:
        await sdk("log", action="a")
        services.log.sign_pending()
        key = await sdk("public_key")
        assert key == services.log.signer.verifier().key_string()
        checkpoint = await sdk("checkpoint")
        assert (checkpoint.size, checkpoint.origin) == (1, "test.trailkeep/acme")
        assert not checkpoint.verified  # no key was pinned

    @pytest.mark.parametrize("form", ["id", "event", "proof", "record"])
    async def test_verify_event(
        self, sdk: Either, services: Services, form: str, tmp_path: Path
    ) -> None:
        event = await sdk("log", action="login", actor_email="a@x.io")
        services.log.sign_pending()
        proof = await sdk("proof", event["id"])
        record = (await sdk.collect("export_lines"))[1]
        subject = {
            "id": event["id"],
            "event": event,
            "proof": proof,
            "record": orjson.loads(record),
        }[form]
        verified = await sdk("verify_event", subject)
        assert verified.event["id"] == event["id"]
        assert verified.checkpoint.size == 1
        assert verified.checkpoint.verified

    async def test_tampered_copy_fails(self, sdk: Either, services: Services) -> None:
        event = await sdk("log", action="login", actor_id="u-1")
        services.log.sign_pending()
        with pytest.raises(VerificationError) as caught:
            await sdk("verify_event", {**event, "actor": {"id": "u-2"}})
        assert isinstance(caught.value.__cause__, IntegrityError)
        assert "does not match" in caught.value.message

    async def test_wrong_key_fails(self, sdk: Either, services: Services) -> None:
        event = await sdk("log", action="a")
        services.log.sign_pending()
        other = Signer.generate("test.trailkeep").verifier().key_string()
        with pytest.raises(VerificationError):
            await sdk("verify_event", event["id"], public_key=other)

    async def test_not_yet_checkpointed(self, sdk: Either) -> None:
        event = await sdk("log", action="a")
        await sdk("checkpoint")  # signs the first (size 1) checkpoint
        later = await sdk("log", action="b")
        with pytest.raises(ConflictError) as caught:
            await sdk("proof", later["id"])
        assert caught.value.code == "NOT_YET_CHECKPOINTED"
        assert (await sdk("proof", event["id"]))["tree_size"] == 1

    async def test_verify_consistency(self, sdk: Either, services: Services) -> None:
        await sdk("log", action="a")
        services.log.sign_pending()
        old = await sdk("checkpoint")
        await sdk("log_bulk", [{"action": "b"}, {"action": "c"}])
        services.log.sign_pending()
        first, second = await sdk("verify_consistency", old.note)
        assert (first.size, second.size) == (1, 3)
        assert second.verified
        first, second = await sdk("verify_consistency", old, second)
        assert (first.size, second.size) == (1, 3)


class TestPinning:
    """With a pinned key, every checkpoint shown must extend the newest one seen."""

    async def test_follows_a_growing_log(
        self, make_sdk: Any, acme: Keys, services: Services
    ) -> None:
        key = services.log.signer.verifier().key_string()
        audit = make_sdk(acme.admin, pin_public_key=key)
        await audit("log", action="a")
        services.log.sign_pending()
        assert (await audit("checkpoint")).verified
        await audit("log", action="b")
        services.log.sign_pending()
        assert (await audit("checkpoint")).size == 2
        assert audit.client.pinned_checkpoint.size == 2
        resumed = make_sdk(
            acme.admin, pin_public_key=key, pinned_checkpoint=audit.client.pinned_checkpoint.note
        )
        assert (await resumed("checkpoint")).size == 2

    async def test_wrong_pinned_key(self, make_sdk: Any, acme: Keys, services: Services) -> None:
        other = Signer.generate("test.trailkeep").verifier().key_string()
        audit = make_sdk(acme.admin, pin_public_key=other)
        services.log.sign_pending()
        with pytest.raises(VerificationError):
            await audit("checkpoint")


class _ShownCheckpoints(httpx.AsyncBaseTransport):
    """The real app, except that /v1/log/checkpoint answers the notes a test scripts."""

    def __init__(self, app: FastAPI) -> None:
        self._app = httpx.ASGITransport(app=app)
        self.notes: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/log/checkpoint" and self.notes:
            return httpx.Response(200, text=self.notes.pop(0))
        return await self._app.handle_async_request(request)


class TestPinningDetects:
    """A fork, a rollback or an unrelated root raises InconsistentLogError."""

    @pytest_asyncio.fixture
    async def shown(self, app: FastAPI, services: Services, acme: Keys) -> Any:
        transport = _ShownCheckpoints(app)
        key = services.log.signer.verifier().key_string()
        async with AsyncClient(BASE_URL, token=acme.admin, transport=transport,
                               pin_public_key=key) as audit:  # fmt: skip
            await audit.log_bulk([{"action": f"e{i}"} for i in range(4)])
            services.log.sign_pending()
            assert (await audit.checkpoint()).size == 4
            yield audit, transport

    def forged(self, services: Services, size: int, root: bytes) -> str:
        body = Checkpoint("test.trailkeep/acme", size, root).to_body()
        return services.log.signer.sign_note(body)

    @pytest.mark.parametrize(
        ("size", "what"),
        [
            pytest.param(4, "forked", id="same-size-other-root"),
            pytest.param(2, "rolled back", id="smaller"),
            pytest.param(3, "rolled back", id="smaller-by-one"),
        ],
    )
    async def test_detected(self, shown: Any, services: Services, size: int, what: str) -> None:
        audit, transport = shown
        transport.notes.append(self.forged(services, size, b"\x07" * 32))
        with pytest.raises(InconsistentLogError, match=what):
            await audit.checkpoint()

    async def test_bigger_but_unrelated(self, shown: Any, services: Services) -> None:
        audit, transport = shown
        await audit.log_bulk([{"action": "f"}, {"action": "g"}])
        transport.notes.append(self.forged(services, 6, b"\x07" * 32))
        with pytest.raises(InconsistentLogError, match="does not extend"):
            await audit.checkpoint()
        assert audit.pinned_checkpoint.size == 4  # the bad one was not pinned

    async def test_a_saved_pin_must_verify(self, shown: Any, services: Services) -> None:
        audit, _ = shown
        key = services.log.signer.verifier().key_string()
        with pytest.raises(VerificationError):
            AsyncClient(BASE_URL, pin_public_key=key, pinned_checkpoint="not a note")
        with pytest.raises(ValueError, match="pin_public_key"):
            AsyncClient(BASE_URL, pinned_checkpoint=audit.pinned_checkpoint.note)
