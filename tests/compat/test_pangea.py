"""pangea-sdk's ``Audit`` and ``AuditAsync`` against a real server: the scenarios of
``shared/compat/pangea.md`` §8 (1-8, 10, 13, 14) and more, with the SDK's own tamper checks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.compat.support import Tenant, vendor

pangea = vendor("pangea")
from pangea import PangeaConfig  # noqa: E402 - after the vendor check
from pangea.asyncio.services import AuditAsync  # noqa: E402
from pangea.exceptions import (  # noqa: E402
    AcceptedRequestException,
    BadOffsetException,
    NotFound,
    TreeNotFoundException,
    UnauthorizedException,
    ValidationException,
)
from pangea.services import Audit  # noqa: E402
from pangea.services.audit.models import EventVerification  # noqa: E402
from pangea.services.audit.util import (  # noqa: E402
    decode_consistency_proof,
    decode_hash,
    verify_consistency_proof,
)

pytestmark = pytest.mark.timeout(120)

PASS, NONE = EventVerification.PASS, EventVerification.NONE


def config(tenant: Tenant) -> Any:
    return PangeaConfig(
        base_url_template=f"{tenant.url}/pangea", poll_result_timeout=5, request_retries=0
    )


def audit(tenant: Tenant, **kwargs: Any) -> Any:
    return Audit(tenant.keys["admin"].token, config=config(tenant), **kwargs)


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "signer.pem"
    path.write_bytes(pem)
    return str(path)


class TestLog:
    """``log`` and ``log_event``: hashes, envelopes and the SDK's verify chain (§8.1-4)."""

    def test_minimal(self, tenant: Tenant) -> None:
        got = audit(tenant).log(message="hello", actor="alice")
        assert got.status == "Success"
        assert len(got.result.hash) == 64
        assert got.result.envelope is None

    def test_verify_chain(self, tenant: Tenant) -> None:
        client = audit(tenant)
        first = client.log(message="m1", verify=True)
        assert first.result.membership_verification == PASS
        assert first.result.consistency_verification == NONE
        second = client.log(message="m2", verify=True)
        assert second.result.membership_verification == PASS
        assert second.result.consistency_verification == PASS
        third = client.log(message="m3", actor="bob", verify=True)
        assert third.result.consistency_verification == PASS

    def test_signed(self, tenant: Tenant, key_file: str) -> None:
        signer = audit(tenant, private_key_file=key_file)
        got = signer.log(message="s", new={"b": 2, "a": 1}, sign_local=True, verify=True)
        assert got.result.signature_verification == PASS
        assert got.result.membership_verification == PASS
        assert got.result.envelope.event["new"] == '{"a":1,"b":2}'

    @pytest.mark.parametrize(
        "stamp",
        [
            pytest.param(datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), id="microseconds"),
            pytest.param(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), id="no-microseconds"),
            pytest.param(
                datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))), id="offset"
            ),
        ],
    )
    def test_signed_with_timestamp(self, tenant: Tenant, key_file: str, stamp: datetime) -> None:
        signer = audit(tenant, private_key_file=key_file)
        got = signer.log(message="t", timestamp=stamp, sign_local=True, verify=True)
        assert got.result.signature_verification == PASS

    def test_signed_with_a_preformatted_timestamp(self, tenant: Tenant, key_file: str) -> None:
        signer = audit(tenant, private_key_file=key_file)
        got = signer.log_event(
            {"message": "t", "timestamp": "2024-01-02T03:04:05Z"},
            sign_local=True,
            verify=True,
        )
        assert got.result.signature_verification == PASS

    def test_tenant_id(self, tenant: Tenant) -> None:
        client = Audit(tenant.keys["admin"].token, config=config(tenant), tenant_id="t1")
        got = client.log_event({"message": "x"}, verbose=True)
        assert got.result.envelope.event["tenant_id"] == "t1"

    def test_readable_natively(self, tenant: Tenant) -> None:
        audit(tenant).log(
            message="seen", actor="carol", action="login", target="door", status="success"
        )
        (event,) = tenant.native()["events"]
        assert event["actor"] == {"id": "carol"}
        assert event["target"] == {"id": "door"}
        assert event["action"] == "login"
        assert event["outcome"] == "success"
        assert event["metadata"]["pangea"]["event"]["message"] == "seen"


class TestBulk:
    """``log_bulk`` and ``log_bulk_async`` (§8.5-6)."""

    def test_bulk(self, tenant: Tenant, key_file: str) -> None:
        got = audit(tenant).log_bulk([{"message": "b1"}, {"message": "b2"}], verbose=True)
        assert [r.envelope.event["message"] for r in got.result.results] == ["b1", "b2"]
        assert all(r.membership_verification == NONE for r in got.result.results)
        signed = audit(tenant, private_key_file=key_file).log_bulk(
            [{"message": "s1"}, {"message": "s2"}], sign_local=True, verbose=True
        )
        assert all(r.signature_verification == PASS for r in signed.result.results)

    def test_bulk_async(self, tenant: Tenant) -> None:
        client = audit(tenant)
        got = client.log_bulk_async([{"message": "a1"}, {"message": "a2"}], verbose=True)
        assert got.http_status == 202
        assert got.result is None
        for _ in range(50):
            try:
                done = client.poll_result(response=got)
                break
            except AcceptedRequestException:
                continue
        assert [r.envelope.event["message"] for r in done.result.results] == ["a1", "a2"]
        assert len(tenant.native()["events"]) == 2

    def test_unknown_request(self, tenant: Tenant) -> None:
        with pytest.raises(NotFound):
            audit(tenant).poll_result(request_id="prq_" + "0" * 32)


def _seed(tenant: Tenant) -> Any:
    client = audit(tenant)
    client.log(message="one", actor="bob", source="monitor")
    client.log(message="two", actor="alice", source="web")
    client.log(message="three", actor="bob", source="web")
    client.log(message="four four", actor="bobby", source="monitor")
    return client


class TestSearch:
    """``search`` and ``results`` with the SDK's event and membership checks (§8.7-8)."""

    def test_search_and_verify(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        got = client.search(query="actor:bob", limit=1, max_results=5, verify_consistency=True)
        assert got.result.count == 3  # bob and bobby: a field:value term is "contains"
        assert got.result.root is None
        assert got.result.unpublished_root.size == 4
        (event,) = got.result.events
        assert event.membership_verification == PASS
        assert event.consistency_verification == NONE

    def test_results_pages(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        got = client.search(query='message:""', order="asc", order_by="received_at", limit=1)
        assert got.result.count == 4
        second = client.results(id=got.result.id, limit=1, offset=1)
        assert second.result.count == 4
        assert second.result.events[0].envelope.event["message"] == "two"
        with pytest.raises(BadOffsetException):
            client.results(id=got.result.id, limit=1, offset=5)

    def test_frozen_result_set(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        got = client.search(query="", order="asc", order_by="received_at", limit=2)
        client.log(message="later")
        page = client.results(id=got.result.id, limit=10, offset=0)
        assert page.result.count == 4
        assert [e.envelope.event["message"] for e in page.result.events][-1] == "four four"

    @pytest.mark.parametrize(
        ("kwargs", "messages"),
        [
            pytest.param({"query": "four"}, ["four four"], id="any-field"),
            pytest.param({"query": '"four four"'}, ["four four"], id="quoted"),
            pytest.param({"query": "actor:bob -source:web"}, ["one", "four four"], id="exclude"),
            pytest.param({"query": "Bob"}, [], id="case-sensitive"),
            pytest.param(
                {"query": "", "search_restriction": {"source": ["monitor"]}},
                ["one", "four four"],
                id="restriction",
            ),
            pytest.param(
                {"query": "", "search_restriction": {"actor": ["bob"]}},
                ["one", "three"],
                id="restriction-is-exact",
            ),
            pytest.param(
                {"query": "", "start": "1d"},
                ["one", "two", "three", "four four"],
                id="relative-start",
            ),
            pytest.param({"query": "", "end": "2000-01-01T00:00:00Z"}, [], id="end-in-the-past"),
        ],
    )
    def test_filters(self, tenant: Tenant, kwargs: dict[str, Any], messages: list[str]) -> None:
        got = _seed(tenant).search(order="asc", order_by="received_at", **kwargs)
        assert [e.envelope.event["message"] for e in got.result.events] == messages

    def test_desc_is_reverse_insertion_order(self, tenant: Tenant) -> None:
        got = _seed(tenant).search(query="", order="desc", order_by="received_at")
        assert [e.envelope.event["message"] for e in got.result.events] == [
            "four four",
            "three",
            "two",
            "one",
        ]

    def test_native_events_are_searchable_and_verify(self, tenant: Tenant) -> None:
        tenant.seed(
            {"action": "document.update", "actor": {"id": "dora"}, "new": {"b": 1, "a": [1]}},
            {"action": "login", "actor": {"id": "erin"}, "message": "hi"},
        )
        audit(tenant).log(message="through pangea", actor="dora")
        got = audit(tenant).search(
            query="actor:dora", order="asc", order_by="received_at", verify_consistency=True
        )
        assert [e.envelope.event["message"] for e in got.result.events] == [
            "document.update",
            "through pangea",
        ]
        assert all(e.membership_verification == PASS for e in got.result.events)
        assert got.result.events[0].envelope.event["new"] == '{"a":[1],"b":1}'

    def test_unknown_restriction_key(self, tenant: Tenant) -> None:
        with pytest.raises(ValidationException):
            audit(tenant).search(query="", search_restriction={"colour": ["red"]})


class TestRoot:
    """``root`` and its consistency proofs (§8.10)."""

    def test_root_sizes(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        latest = client.root()
        assert latest.result.data.size == 4
        three = client.root(tree_size=3).result.data
        two = client.root(tree_size=2).result.data
        assert three.size == 3
        assert verify_consistency_proof(
            decode_hash(three.root_hash),
            decode_hash(two.root_hash),
            decode_consistency_proof(three.consistency_proof),
        )
        with pytest.raises(TreeNotFoundException):
            client.root(tree_size=999)

    def test_search_root_matches(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        got = client.search(query="", verify_consistency=True)
        assert got.result.unpublished_root.root_hash == client.root().result.data.root_hash


class TestErrors:
    """Failures as the SDK's own exceptions (§8.13)."""

    def test_bad_token(self, tenant: Tenant) -> None:
        client = Audit("not-a-token", config=config(tenant))
        with pytest.raises(UnauthorizedException):
            client.log(message="x")

    def test_missing_message(self, tenant: Tenant) -> None:
        with pytest.raises(ValidationException) as caught:
            audit(tenant).log_event({"actor": "nobody"})
        (error,) = caught.value.errors
        assert error.code == "FieldRequired"
        assert error.source == "/event/message"

    def test_unknown_search_id(self, tenant: Tenant) -> None:
        with pytest.raises(NotFound):
            audit(tenant).results(id="pas_" + "0" * 32, limit=1, offset=0)


class TestAsync:
    """``AuditAsync`` speaks the same API (§8.14)."""

    def test_verify_chain_and_search(self, tenant: Tenant) -> None:
        async def run() -> None:
            client = AuditAsync(tenant.keys["admin"].token, config=config(tenant))
            try:
                first = await client.log(message="a1", actor="zed", verify=True)
                second = await client.log(message="a2", actor="zed", verify=True)
                assert first.result.membership_verification == PASS
                assert second.result.consistency_verification == PASS
                got = await client.search(query="actor:zed", verify_consistency=True)
                assert got.result.count == 2
                assert all(e.membership_verification == PASS for e in got.result.events)
                root = await client.root(tree_size=1)
                assert root.result.data.size == 1
            finally:
                await client.close()

        asyncio.run(run())


class TestIsolation:
    """Search ids and request ids are the issuing tenant's: another tenant's key gets NotFound."""

    def test_results_of_another_tenant(self, tenant: Tenant, other_tenant: Tenant) -> None:
        found = _seed(tenant).search(query="")
        with pytest.raises(NotFound):
            audit(other_tenant).results(id=found.result.id, limit=1, offset=0)

    def test_poll_of_another_tenant(self, tenant: Tenant, other_tenant: Tenant) -> None:
        accepted = audit(tenant).log_bulk_async([{"message": "mine"}])
        with pytest.raises(NotFound):
            audit(other_tenant).poll_result(request_id=accepted.request_id)


class TestLogStream:
    """``log_stream``: Auth0 log-stream records become events (§8.12)."""

    def test_auth0_records(self, tenant: Tenant) -> None:
        data = {
            "date": "2024-03-29T17:26:50.193Z",
            "type": "sapi",
            "description": "Create a log stream",
            "client_id": "cid",
            "ip": "127.0.0.1",
            "user_agent": "AppleWebKit/537.36",
            "user_id": "auth0|42",
        }
        got = audit(tenant).log_stream({"logs": [{"log_id": "x1", "data": data}]})
        assert got.status == "Success"
        (event,) = tenant.native()["events"]
        assert event["action"] == "auth0.sapi"
        assert event["message"] == "Create a log stream"
        assert event["actor"] == {"id": "auth0|42"}
        assert event["source"] == {
            "ip": "127.0.0.1",
            "user_agent": "AppleWebKit/537.36",
            "client_id": "cid",
        }
        assert event["timestamp"] == "2024-03-29T17:26:50.193000Z"
        assert event["metadata"]["auth0"] == {"log_id": "x1", "data": data}
        found = audit(tenant).search(query="actor:auth0|42", verify_consistency=True)
        assert found.result.events[0].membership_verification == PASS

    def test_record_without_type(self, tenant: Tenant) -> None:
        with pytest.raises(ValidationException):
            audit(tenant).log_stream({"logs": [{"log_id": "x", "data": {"description": "d"}}]})


class TestNotServed:
    """Paths not served (``/v1/schema``, ``/v1beta/config/...``) answer ``NotFound`` in the
    envelope, which the SDK can read. Export and download: ``test_pangea_export.py``."""

    @pytest.mark.parametrize("path", ["/v1/schema", "/v1beta/config/list"])
    def test_other_paths(self, tenant: Tenant, path: str) -> None:
        resp = httpx.post(f"{tenant.url}/pangea{path}", json={}, headers=tenant.auth())
        assert resp.status_code == 404
        envelope = resp.json()
        assert envelope["status"] == "NotFound"
        assert envelope["result"] is None
