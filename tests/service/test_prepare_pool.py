"""Batches prepared in worker processes come back as the in-process path prepares them: same
contents and stored JSON, salts that open their commitments, the same leaf prefix, the same
refusals; and through the API, the same order and idempotency."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_keys
from trailkeep.api.app import create_app
from trailkeep.api.services import Services
from trailkeep.model.commitments import commitment, field_paths, leaf_prefix
from trailkeep.model.pangea import pangea_leaf
from trailkeep.service.events import Limits, prepare_all
from trailkeep.service.prepare_pool import PART, PreparePool
from trailkeep.settings import Settings


def _contents(n: int) -> list[dict[str, Any]]:
    return [
        {
            "action": f"document.update.{i}",
            "timestamp": "2026-11-23T10:00:05.123Z",
            "actor": {"id": f"u-{i}", "email": f"u{i}@example.com"},
            "metadata": {"i": i, "f": 0.1 * i, "nested": {"deep": [i, None, "x"]}},
            "message": "ünïcödé \u2028",
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def pool() -> Iterator[PreparePool]:
    made = PreparePool(1, Limits(), min_events=1)
    yield made
    made.close()


class TestPreparePool:
    """What a worker prepares is what the server's process would have prepared."""

    def test_same_events_as_in_process(self, pool: PreparePool) -> None:
        contents = _contents(40)
        pooled = asyncio.run(pool.prepare(contents, batch=True))
        local = prepare_all(_contents(40), Limits(), batch=True)
        assert len(pooled) == 40
        for got, want in zip(pooled, local, strict=True):
            assert got.content == want.content
            assert list(got.content) == list(want.content)
            assert got.body == want.body
            assert list(got.salts) == list(want.salts) == list(got.commitments)
            values = field_paths(got.content)
            for path, salt in got.salts.items():
                assert got.commitments[path] == commitment(salt, values[path])
            assert got.leaf_prefix == leaf_prefix(got.id, got.received_at, got.commitments)
            assert got.pangea_leaf == pangea_leaf(got.content, got.received_at)
        assert len({e.id for e in pooled}) == 40

    @pytest.mark.parametrize(
        ("bad", "match"),
        [
            pytest.param(
                {"action": "key.create", "category": "system"},
                r"^events\[3\]: action 'key.create' in category 'system' is reserved",
                id="reserved",
            ),
            pytest.param(
                {"action": "a", "timestamp": "2099-01-01T00:00:00Z"},
                r"^events\[3\]\.timestamp: 2099-01-01T00:00:00.000000Z is more than 24 h ahead",
                id="future",
            ),
            pytest.param(
                {"action": "a", "message": "x" * 70_000},
                r"^events\[3\] is \d+ bytes of JSON; the limit is 65536",
                id="too-large",
            ),
        ],
    )
    def test_same_refusals(self, pool: PreparePool, bad: dict[str, Any], match: str) -> None:
        contents = [*_contents(3), bad, *_contents(2)]
        with pytest.raises(Exception, match=match) as pooled:
            asyncio.run(pool.prepare(contents, batch=True))
        with pytest.raises(Exception, match=match) as local:
            prepare_all(contents, Limits(), batch=True)
        assert type(pooled.value) is type(local.value)
        assert getattr(pooled.value, "code", None) == getattr(local.value, "code", None)

    def test_parts_keep_order_and_name_the_batch_index(self, pool: PreparePool) -> None:
        """A batch larger than one part comes back whole and in order; a refusal in a later
        part names the event's index in the whole batch, and the first refusal wins."""
        contents = _contents(PART * 2 + 30)
        events = asyncio.run(pool.prepare(contents, batch=True))
        assert [e.content["action"] for e in events] == [c["action"] for c in contents]
        reserved = {"action": "key.create", "category": "system"}
        late = [*contents[: PART + 7], reserved, *contents[PART + 7 :], reserved]
        with pytest.raises(Exception, match=rf"^events\[{PART + 7}\]: action 'key.create'"):
            asyncio.run(pool.prepare(late, batch=True))

    def test_needs_a_worker(self) -> None:
        with pytest.raises(ValueError, match="at least 1 worker"):
            PreparePool(0, Limits())


@pytest.fixture
def pooled_services(tmp_path: Path) -> Iterator[Services]:
    config = Settings(
        database=f"sqlite:///{tmp_path / 'pool.db'}",
        signing_key=tmp_path / "signing.key",
        server_name="test.trailkeep",
        sqlite_synchronous="NORMAL",
        prepare_workers=1,
    )
    built = Services.build(config)
    yield built
    built.close()


@pytest.mark.asyncio
class TestIngestThroughPool:
    """With ``prepare_workers`` set, large batches keep their order, replay and refusals."""

    async def test_order_replay_and_refusal(self, pooled_services: Services) -> None:
        assert pooled_services.prepare_pool is not None
        keys = make_keys(pooled_services, "acme")
        app = create_app(pooled_services.settings, pooled_services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as client:
            headers = {**keys.auth("writer"), "Idempotency-Key": "b1"}
            body = {"events": _contents(50)}
            first = await client.post("/v1/events/batch", json=body, headers=headers)
            again = await client.post("/v1/events/batch", json=body, headers=headers)
            assert first.status_code == again.status_code == 201, first.text
            stored = first.json()["events"]
            assert [e["seq"] for e in stored] == list(range(50))
            assert [e["action"] for e in stored] == [c["action"] for c in _contents(50)]
            assert again.json() == first.json()
            bad = {"events": [*_contents(40), {"action": "log.rotate", "category": "system"}]}
            refused = await client.post("/v1/events/batch", json=bad, headers=keys.auth("writer"))
            assert refused.status_code == 422
            assert refused.json()["error"]["message"].startswith("events[40]: action 'log.rotate'")
            listed = await client.get(
                "/v1/events", params={"limit": 1000}, headers=keys.auth("reader")
            )
            assert len(listed.json()["events"]) == 50
