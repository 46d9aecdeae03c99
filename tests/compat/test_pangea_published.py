"""pangea-sdk in published mode (``shared/compat/pangea.md`` §8.9): a server with
``pangea_published_roots`` answers events covered by a signed checkpoint as published, and the
SDK's Arweave lookup is replaced so that nothing leaves loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.compat.support import Tenant, new_tenant, vendor
from tests.process import Server, running_server

pangea = vendor("pangea")
from pangea import PangeaConfig  # noqa: E402 - after the vendor check
from pangea.asyncio.services import AuditAsync  # noqa: E402
from pangea.services import Audit  # noqa: E402
from pangea.services.audit import audit as audit_module  # noqa: E402
from pangea.services.audit.models import EventVerification  # noqa: E402

pytestmark = pytest.mark.timeout(120)

PASS, NONE = EventVerification.PASS, EventVerification.NONE


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"AXONFLOW_TELEMETRY": "off", "TRAILKEEP_PANGEA_PUBLISHED_ROOTS": "true"}
    with running_server(tmp_path_factory.mktemp("server"), env=env) as running:
        yield running


@pytest.fixture
def tenant(server: Server) -> Tenant:
    return new_tenant(server)


@pytest.fixture
def arweave(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, set[int]]]:
    """The SDK's Arweave lookup, answering that nothing is published there (and recording
    what it was asked), so the SDK falls back to this server's ``/v1/root``."""
    asked: list[tuple[str, set[int]]] = []

    def lookup(tree_name: str, sizes: Any) -> dict[int, Any]:
        asked.append((tree_name, set(sizes)))
        return {}

    monkeypatch.setattr(audit_module, "get_arweave_published_roots", lookup)
    return asked


def config(tenant: Tenant) -> Any:
    return PangeaConfig(
        base_url_template=f"{tenant.url}/pangea", poll_result_timeout=5, request_retries=0
    )


def wait_for_checkpoint(tenant: Tenant, size: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        note = httpx.get(f"{tenant.url}/v1/log/checkpoint", headers=tenant.auth("reader")).text
        if note.count("\n") > 1 and int(note.splitlines()[1]) >= size:
            return
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of size {size}")


def seed(tenant: Tenant) -> None:
    client = Audit(tenant.keys["admin"].token, config=config(tenant))
    for i in range(5):
        client.log(message=f"p{i}", actor="pat")
    tenant.seed({"action": "native.write", "actor": {"id": "pat"}})
    wait_for_checkpoint(tenant, 6)
    client.log(message="late", actor="pat")  # after the checkpoint: unpublished


class TestPublished:
    """Published events pass membership and consistency; newer ones pass membership."""

    def test_search(self, tenant: Tenant, arweave: list[tuple[str, set[int]]]) -> None:
        seed(tenant)
        client = Audit(tenant.keys["admin"].token, config=config(tenant))
        got = client.search(query="actor:pat", order="asc", verify_consistency=True)
        events = got.result.events
        assert [e.published for e in events] == [True] * 6 + [False]
        assert [e.leaf_index for e in events[:6]] == list(range(6))
        assert got.result.root.size == 6
        assert all(e.membership_verification == PASS for e in events)
        assert all(e.consistency_verification == PASS for e in events[:6])
        assert events[6].consistency_verification == NONE
        assert arweave, "the SDK never asked for published roots"
        assert arweave[0][0] == got.result.root.tree_name

    def test_results_page(self, tenant: Tenant, arweave: list[tuple[str, set[int]]]) -> None:
        seed(tenant)
        client = Audit(tenant.keys["admin"].token, config=config(tenant))
        got = client.search(query="", order="asc", limit=2, verify_consistency=True)
        page = client.results(id=got.result.id, limit=3, offset=3, verify_consistency=True)
        assert [e.leaf_index for e in page.result.events] == [3, 4, 5]
        assert all(e.membership_verification == PASS for e in page.result.events)
        assert all(e.consistency_verification == PASS for e in page.result.events)

    def test_async(self, tenant: Tenant, arweave: list[tuple[str, set[int]]]) -> None:
        seed(tenant)

        async def run() -> list[Any]:
            client = AuditAsync(tenant.keys["admin"].token, config=config(tenant))
            try:
                got = await client.search(query="", order="asc", verify_consistency=True)
                return list(got.result.events)
            finally:
                await client.close()

        events = asyncio.run(run())
        assert all(e.membership_verification == PASS for e in events)
        assert all(e.consistency_verification == PASS for e in events if e.published)
