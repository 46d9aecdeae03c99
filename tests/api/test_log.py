"""Tamper evidence through the API: checkpoints, proofs, receipts, erasure, client signatures."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import Keys
from trailkeep.api.services import Services
from trailkeep.client.verify import verify_checkpoints, verify_event
from trailkeep.errors import IntegrityError
from trailkeep.merkle import RFC9162, Verifier, open_checkpoint, verify_inclusion
from trailkeep.model.signing import sign_content
from trailkeep.model.timeparse import format_time, utcnow

pytestmark = pytest.mark.asyncio


async def write(client: httpx.AsyncClient, keys: Keys, n: int) -> list[dict[str, Any]]:
    events = [
        {"action": f"a.{i}", "actor": {"id": f"u{i}", "email": f"u{i}@x.io"}} for i in range(n)
    ]
    resp = await client.post(
        "/v1/events/batch", json={"events": events}, headers=keys.auth("writer")
    )
    assert resp.status_code == 201, resp.text
    written: list[dict[str, Any]] = resp.json()["events"]
    return written


async def public_key(client: httpx.AsyncClient) -> str:
    resp = await client.get("/v1/log/key")
    assert resp.status_code == 200
    return resp.text.strip()


class TestCheckpoints:
    """Checkpoints are C2SP signed notes per tenant, signed only when the tree grew."""

    async def test_signed_note(
        self, client: httpx.AsyncClient, services: Services, acme: Keys
    ) -> None:
        await write(client, acme, 5)
        services.log.sign_pending()
        note = (await client.get("/v1/log/checkpoint", headers=acme.auth("reader"))).text
        checkpoint = open_checkpoint(note, Verifier.parse(await public_key(client)))
        assert checkpoint.origin == "test.trailkeep/acme"
        assert checkpoint.size == 5
        assert note.splitlines()[4].startswith("— test.trailkeep ")

    async def test_only_when_grown(
        self, client: httpx.AsyncClient, services: Services, acme: Keys
    ) -> None:
        await write(client, acme, 2)
        assert [c.size for c in services.log.sign_pending()] == [2]
        assert services.log.sign_pending() == []
        await write(client, acme, 1)
        assert [c.size for c in services.log.sign_pending()] == [3]
        assert [c.size for c in services.store.list_checkpoints("acme")] == [2, 3]

    async def test_empty_tenant_gets_size_zero(self, client: httpx.AsyncClient, acme: Keys) -> None:
        note = (await client.get("/v1/log/checkpoint", headers=acme.auth("reader"))).text
        assert note.splitlines()[1] == "0"

    async def test_consistency_between_checkpoints(
        self, client: httpx.AsyncClient, services: Services, acme: Keys
    ) -> None:
        await write(client, acme, 3)
        services.log.sign_pending()
        old = (await client.get("/v1/log/checkpoint", headers=acme.auth("reader"))).text
        await write(client, acme, 10)
        services.log.sign_pending()
        new = (await client.get("/v1/log/checkpoint", headers=acme.auth("reader"))).text
        proof = (
            await client.get(
                "/v1/log/proof/consistency",
                params={"from": 3, "to": 13},
                headers=acme.auth("reader"),
            )
        ).json()
        first, second = verify_checkpoints(old, new, proof["hashes"], await public_key(client))
        assert (first.size, second.size) == (3, 13)
        with pytest.raises(IntegrityError):
            verify_checkpoints(old, new, proof["hashes"][1:], await public_key(client))

    async def test_signing_key_file_is_private(self, services: Services, settings: Any) -> None:
        assert settings.signing_key.stat().st_mode & 0o777 == 0o600
        assert settings.signing_key.read_text().startswith("PRIVATE+KEY+test.trailkeep+")


class TestProofs:
    """Event proofs verify offline with any RFC 9162 verifier, as JSON and as tlog-proof."""

    async def test_every_event_verifies(
        self, client: httpx.AsyncClient, services: Services, acme: Keys
    ) -> None:
        written = await write(client, acme, 11)
        services.log.sign_pending()
        key = await public_key(client)
        for event in written:
            proof = (
                await client.get(f"/v1/events/{event['id']}/proof", headers=acme.auth("reader"))
            ).json()
            assert proof["leaf_index"] == event["seq"]
            assert proof["tree_size"] == 11
            assert base64.b64decode(proof["leaf_hash"]).hex() == event["hash"]
            assert verify_event(proof, key).size == 11
            receipt = await client.get(
                f"/v1/events/{event['id']}/proof",
                headers={**acme.auth("reader"), "Accept": "text/plain"},
            )
            assert receipt.text.startswith("c2sp.org/tlog-proof@v1\n")
            assert verify_event(proof, key, receipt=receipt.text).size == 11

    async def test_tampered_evidence_fails(
        self, client: httpx.AsyncClient, services: Services, acme: Keys
    ) -> None:
        written = await write(client, acme, 4)
        services.log.sign_pending()
        proof = (
            await client.get(f"/v1/events/{written[1]['id']}/proof", headers=acme.auth("reader"))
        ).json()
        key = await public_key(client)
        changed = {**proof, "event": {**proof["event"], "action": "something.else"}}
        with pytest.raises(IntegrityError, match="does not match its hash"):
            verify_event(changed, key)
        unhashed = {**changed, "event": {k: v for k, v in changed["event"].items() if k != "hash"}}
        with pytest.raises(IntegrityError):
            verify_event(unhashed, key)
        other_key = Verifier.parse(
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        )
        with pytest.raises(IntegrityError):
            verify_event(proof, other_key)

    async def test_inclusion_and_leaves_endpoints(
        self, client: httpx.AsyncClient, services: Services, acme: Keys
    ) -> None:
        written = await write(client, acme, 9)
        services.log.sign_pending()
        note = (await client.get("/v1/log/checkpoint", headers=acme.auth("reader"))).text
        root = open_checkpoint(note, Verifier.parse(await public_key(client))).root_hash
        leaves = (
            await client.get(
                "/v1/log/leaves", params={"start": 0, "end": 9}, headers=acme.auth("reader")
            )
        ).json()["leaves"]
        assert [base64.b64decode(x["hash"]).hex() for x in leaves] == [e["hash"] for e in written]
        for index in range(9):
            proof = (
                await client.get(
                    "/v1/log/proof/inclusion",
                    params={"index": index, "size": 9},
                    headers=acme.auth("reader"),
                )
            ).json()
            hashes = [base64.b64decode(h) for h in proof["hashes"]]
            leaf = bytes.fromhex(written[index]["hash"])
            verify_inclusion(RFC9162, index, 9, leaf, hashes, root)

    @pytest.mark.parametrize(
        ("path", "params"),
        [
            pytest.param(
                "/v1/log/proof/inclusion", {"index": 5, "size": 5}, id="index-not-below-size"
            ),
            pytest.param("/v1/log/proof/inclusion", {"index": 0, "size": 99}, id="size-past-log"),
            pytest.param("/v1/log/proof/consistency", {"from": 3, "to": 2}, id="from-after-to"),
            pytest.param("/v1/log/leaves", {"start": 0, "end": 5000}, id="too-many-leaves"),
            pytest.param("/v1/log/proof/inclusion", {"index": -1, "size": 2}, id="negative"),
        ],
    )
    async def test_bad_ranges(
        self, client: httpx.AsyncClient, acme: Keys, path: str, params: dict[str, int]
    ) -> None:
        await write(client, acme, 5)
        resp = await client.get(path, params=params, headers=acme.auth("reader"))
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "INVALID_REQUEST"

    async def test_not_yet_checkpointed(
        self, client: httpx.AsyncClient, services: Services, acme: Keys
    ) -> None:
        services.log.sign_pending()
        (event,) = await write(client, acme, 1)
        resp = await client.get(f"/v1/events/{event['id']}/proof", headers=acme.auth("reader"))
        assert resp.status_code == 409
        assert resp.json()["error"]["code"] == "NOT_YET_CHECKPOINTED"

    async def test_other_tenant_cannot_prove(
        self, client: httpx.AsyncClient, services: Services, acme: Keys, globex: Keys
    ) -> None:
        (event,) = await write(client, acme, 1)
        services.log.sign_pending()
        resp = await client.get(f"/v1/events/{event['id']}/proof", headers=globex.auth("reader"))
        assert resp.status_code == 404
        note = (await client.get("/v1/log/checkpoint", headers=globex.auth("reader"))).text
        assert note.splitlines()[:2] == ["test.trailkeep/globex", "0"]


class TestRedaction:
    """Erased fields read as {"redacted": true} everywhere, and every proof still verifies."""

    async def test_erase_keeps_proofs(
        self, client: httpx.AsyncClient, services: Services, acme: Keys
    ) -> None:
        written = await write(client, acme, 3)
        target = written[1]
        resp = await client.post(
            f"/v1/events/{target['id']}/redact",
            json={"fields": ["actor.email", "action"][:1], "reason": "GDPR"},
            headers=acme.auth("admin"),
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["actor"] == {"id": "u1", "email": {"redacted": True}}
        services.log.sign_pending()
        reader = acme.auth("reader")
        got = (await client.get(f"/v1/events/{target['id']}", headers=reader)).json()
        assert got["actor"]["email"] == {"redacted": True}
        assert got["hash"] == target["hash"]
        listed = await client.get("/v1/events", params={"actor.email": "u1@x.io"}, headers=reader)
        assert listed.json()["events"] == []
        proof = (await client.get(f"/v1/events/{target['id']}/proof", headers=reader)).json()
        assert "actor.email" not in proof["salts"]
        assert set(proof["redacted"]) == {"actor.email"}
        assert verify_event(proof, await public_key(client)).size == 4
        audit = (
            await client.get("/v1/events", params={"action": "event.redact"}, headers=reader)
        ).json()
        (entry,) = audit["events"]
        assert entry["target"] == {"id": target["id"], "type": "event"}
        assert entry["metadata"] == {"fields": ["actor.email"]}
        assert entry["message"] == "GDPR"

    async def test_whole_object(
        self, client: httpx.AsyncClient, services: Services, acme: Keys
    ) -> None:
        (event,) = await write(client, acme, 1)
        resp = await client.post(
            f"/v1/events/{event['id']}/redact",
            json={"fields": ["actor"]},
            headers=acme.auth("admin"),
        )
        assert resp.json()["actor"] == {"id": {"redacted": True}, "email": {"redacted": True}}
        services.log.sign_pending()
        proof = (
            await client.get(f"/v1/events/{event['id']}/proof", headers=acme.auth("reader"))
        ).json()
        verify_event(proof, await public_key(client))

    @pytest.mark.parametrize(
        ("fields", "status"),
        [
            pytest.param(["action"], 422, id="locating-field"),
            pytest.param(["nope"], 422, id="absent-field"),
            pytest.param([], 422, id="no-fields"),
        ],
    )
    async def test_refused(
        self, client: httpx.AsyncClient, acme: Keys, fields: list[str], status: int
    ) -> None:
        (event,) = await write(client, acme, 1)
        resp = await client.post(
            f"/v1/events/{event['id']}/redact", json={"fields": fields}, headers=acme.auth("admin")
        )
        assert resp.status_code == status, resp.text

    async def test_admin_only_and_own_tenant(
        self, client: httpx.AsyncClient, acme: Keys, globex: Keys
    ) -> None:
        (event,) = await write(client, acme, 1)
        body = {"fields": ["actor.email"]}
        path = f"/v1/events/{event['id']}/redact"
        assert (await client.post(path, json=body, headers=acme.auth("writer"))).status_code == 403
        assert (await client.post(path, json=body, headers=acme.auth("reader"))).status_code == 403
        assert (await client.post(path, json=body, headers=globex.auth("admin"))).status_code == 404


class TestClientSignatures:
    """A client's Ed25519 signature is verified on ingest and returned verbatim."""

    def _signed(self, key: Ed25519PrivateKey, **extra: Any) -> dict[str, Any]:
        content = {
            "action": "deploy",
            "outcome": "success",
            "timestamp": format_time(utcnow()),
            **extra,
        }
        return {**content, "signature": sign_content(content, key)}

    async def test_good_signature(self, client: httpx.AsyncClient, acme: Keys) -> None:
        body = self._signed(Ed25519PrivateKey.generate(), metadata={"build": 7})
        resp = await client.post("/v1/events", json=body, headers=acme.auth("writer"))
        assert resp.status_code == 201, resp.text
        assert resp.json()["signature"] == body["signature"]

    async def test_bad_signature(self, client: httpx.AsyncClient, acme: Keys) -> None:
        body = self._signed(Ed25519PrivateKey.generate())
        body["action"] = "tampered"
        resp = await client.post("/v1/events", json=body, headers=acme.auth("writer"))
        assert resp.status_code == 400
        assert resp.json()["error"]["code"] == "BAD_SIGNATURE"

    async def test_malformed_signature(self, client: httpx.AsyncClient, acme: Keys) -> None:
        body = self._signed(Ed25519PrivateKey.generate())
        body["signature"]["sig"] = "AAAA"
        resp = await client.post("/v1/events", json=body, headers=acme.auth("writer"))
        assert resp.status_code == 422
        assert "signature.sig" in resp.json()["error"]["message"]
