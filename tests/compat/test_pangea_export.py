"""pangea-sdk's ``export``, ``poll_result``, ``download_results`` and ``download_file``
against a real server, sync and async (``shared/compat/pangea.md`` §8.11): the capability URL
works without a token, is bound to its tenant and result set, and expires."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.compat.support import Tenant, new_tenant, vendor
from tests.process import Server, running_server

pangea = vendor("pangea")
from pangea import PangeaConfig  # noqa: E402 - after the vendor check
from pangea.asyncio.services import AuditAsync  # noqa: E402
from pangea.exceptions import (  # noqa: E402
    AcceptedRequestException,
    DownloadFileError,
    NotFound,
    UnauthorizedException,
    ValidationException,
)
from pangea.services import Audit  # noqa: E402
from pangea.services.audit.models import DownloadFormat, SearchResultOutput  # noqa: E402
from pangea.services.audit.util import (  # noqa: E402
    decode_hash,
    decode_membership_proof,
    hash_dict,
    verify_membership_proof,
)

pytestmark = pytest.mark.timeout(120)


def config(tenant: Tenant) -> Any:
    return PangeaConfig(
        base_url_template=f"{tenant.url}/pangea", poll_result_timeout=5, request_retries=0
    )


def audit(tenant: Tenant, role: str = "admin") -> Any:
    return Audit(tenant.keys[role].token, config=config(tenant))


def _seed(tenant: Tenant) -> Any:
    client = audit(tenant)
    client.log(message="one", actor="bob", source="monitor")
    client.log(message="two", actor="alice", source="web")
    client.log(message="three", actor="bob", source="web")
    client.log(message="=four", actor="bobby", source="monitor", new={"k": [1]})
    return client


def _ready(client: Any, request_id: str) -> Any:
    """Poll an export the way the SDK's docs do, until it is ready."""
    for _ in range(100):
        try:
            return client.poll_result(request_id=request_id)
        except AcceptedRequestException:
            time.sleep(0.05)
    raise AssertionError(f"export {request_id} never became ready")


def _fetch(client: Any, **kwargs: Any) -> tuple[Any, bytes]:
    """``download_results`` then ``download_file``: the answer and the un-gzipped file."""
    got = client.download_results(**kwargs)
    file = client.download_file(got.result.dest_url)
    assert file.file[:2] == b"\x1f\x8b", "download_file must hand over the gzip bytes"
    return got, gzip.decompress(file.file)


def _messages(document: dict[str, Any]) -> list[str]:
    return [e["envelope"]["event"]["message"] for e in document["events"]]


def _verified(document: dict[str, Any]) -> None:
    """Every event's hash and membership proof, checked by the SDK's own functions."""
    roots = {
        True: (document.get("root") or {}).get("root_hash"),
        False: (document.get("unpublished_root") or {}).get("root_hash"),
    }
    for event in document["events"]:
        assert hash_dict(event["envelope"]) == event["hash"]
        root = roots[event["published"]]
        assert verify_membership_proof(
            decode_hash(event["hash"]),
            decode_hash(root),
            decode_membership_proof(event["membership_proof"]),
        )


class TestExport:
    """``export`` (202), ``poll_result`` (202 until the snapshot is taken, then Success) and
    the export's file through ``download_results(request_id=...)``."""

    def test_json_not_verbose(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        ex = client.export(format=DownloadFormat.JSON, verbose=False)
        assert ex.status == "Accepted"
        assert ex.http_status == 202
        assert ex.result is None
        assert ex.request_id.startswith("prq_")
        assert len(ex.request_id) == 36
        done = _ready(client, ex.request_id)
        assert done.status == "Success"
        assert done.result.count == 4
        got, raw = _fetch(client, request_id=ex.request_id, format=DownloadFormat.JSON)
        assert got.result.dest_url.startswith(f"{tenant.url}/pangea/download/")
        expires = datetime.fromisoformat(got.result.expires_at.replace("Z", "+00:00"))
        assert timedelta(minutes=55) < expires - datetime.now(UTC) <= timedelta(hours=1)
        document = json.loads(raw)
        assert _messages(document) == ["one", "two", "three", "=four"]  # log order
        assert document["count"] == 4
        assert "root" not in document
        assert "unpublished_root" not in document
        assert all("membership_proof" not in e for e in document["events"])
        assert all(hash_dict(e["envelope"]) == e["hash"] for e in document["events"])
        parsed = SearchResultOutput(**document)  # the SDK's own result model reads it
        assert [e.envelope.event["actor"] for e in parsed.events][:2] == ["bob", "alice"]

    def test_csv_verbose_with_a_time_range(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        ex = client.export(
            start=datetime.now(UTC) - timedelta(hours=1),
            end=datetime.now(UTC) + timedelta(minutes=5),
            order="desc",
        )
        _ready(client, ex.request_id)
        got, raw = _fetch(client, request_id=ex.request_id)
        assert urlsplit(got.result.dest_url).path.endswith(".csv.gz")
        rows = list(csv.DictReader(io.StringIO(raw.decode())))
        assert [r["message"] for r in rows] == ["'=four", "three", "two", "one"]
        assert rows[0]["new"] == '{"k":[1]}'
        assert rows[0]["actor"] == "bobby"
        assert client.root().result.data.size == 5  # export.create, after the snapshot
        root = client.root(tree_size=4).result.data
        for row in rows:
            assert row["published"] == "false"
            assert row["root_hash"] == root.root_hash
            assert verify_membership_proof(
                decode_hash(row["hash"]),
                decode_hash(row["root_hash"]),
                decode_membership_proof(row["membership_proof"]),
            )

    def test_time_range_excludes(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        ex = client.export(format=DownloadFormat.JSON, end=datetime(2000, 1, 1, tzinfo=UTC))
        assert _ready(client, ex.request_id).result.count == 0
        _, raw = _fetch(client, request_id=ex.request_id, format=DownloadFormat.JSON)
        assert json.loads(raw)["events"] == []

    def test_order_by_a_field(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        ex = client.export(format=DownloadFormat.JSON, order_by="actor", order="asc")
        _ready(client, ex.request_id)
        _, raw = _fetch(client, request_id=ex.request_id, format=DownloadFormat.JSON)
        document = json.loads(raw)
        assert [e["envelope"]["event"]["actor"] for e in document["events"]] == [
            "alice",
            "bob",
            "bob",
            "bobby",
        ]
        _verified(document)

    def test_is_audited_and_frozen(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        ex = client.export(format=DownloadFormat.JSON)
        _ready(client, ex.request_id)
        client.log(message="later")
        _, raw = _fetch(client, request_id=ex.request_id, format=DownloadFormat.JSON)
        assert _messages(json.loads(raw)) == ["one", "two", "three", "=four"]
        (record,) = tenant.native(action="export.create")["events"]
        assert record["target"] == {"id": ex.request_id, "type": "export"}
        assert record["metadata"]["dialect"] == "pangea"
        assert record["metadata"]["size"] == 4

    def test_native_events_are_exported_and_verify(self, tenant: Tenant) -> None:
        tenant.seed({"action": "document.update", "actor": {"id": "dora"}, "new": {"b": 1}})
        client = audit(tenant)
        client.log(message="through pangea", actor="dora")
        ex = client.export(format=DownloadFormat.JSON)
        _ready(client, ex.request_id)
        _, raw = _fetch(client, request_id=ex.request_id, format=DownloadFormat.JSON)
        document = json.loads(raw)
        assert _messages(document) == ["document.update", "through pangea"]
        _verified(document)

    def test_reader_key_exports(self, tenant: Tenant) -> None:
        _seed(tenant)
        reader = audit(tenant, "reader")
        ex = reader.export(format=DownloadFormat.JSON)
        assert _ready(reader, ex.request_id).result.count == 4
        _, raw = _fetch(reader, request_id=ex.request_id, format=DownloadFormat.JSON)
        assert len(json.loads(raw)["events"]) == 4

    def test_writer_key_may_not_export(self, tenant: Tenant) -> None:
        with pytest.raises(UnauthorizedException):
            audit(tenant, "writer").export()

    def test_writer_key_may_not_poll_an_export(self, tenant: Tenant) -> None:
        ex = audit(tenant).export()
        with pytest.raises(UnauthorizedException):
            audit(tenant, "writer").poll_result(request_id=ex.request_id)


class TestSearchDownload:
    """``download_results(result_id=...)``: the whole frozen result set of a search."""

    def test_json_verifies(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        found = client.search(
            query="actor:bob", order="asc", order_by="received_at", limit=1, max_results=2
        )
        assert found.result.count == 2
        client.log(message="later", actor="bob")
        _, raw = _fetch(client, result_id=found.result.id, format=DownloadFormat.JSON)
        document = json.loads(raw)
        assert _messages(document) == ["one", "three"]  # max_results, and frozen
        assert document["count"] == 2
        assert document["root"] is None
        assert document["unpublished_root"] == found.result.unpublished_root.model_dump(
            exclude_none=True
        )
        _verified(document)

    def test_csv_default_order(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        found = client.search(query="", search_restriction={"source": ["monitor"]})
        _, raw = _fetch(client, result_id=found.result.id)
        rows = list(csv.DictReader(io.StringIO(raw.decode())))
        assert [r["message"] for r in rows] == ["'=four", "one"]  # newest first, as searched
        assert list(rows[0]) == [
            "received_at", "timestamp", "actor", "action", "message", "source", "status",
            "target", "tenant_id", "old", "new", "other", "signature", "public_key", "hash",
            "published", "leaf_index", "membership_proof", "root_hash",
        ]  # fmt: skip

    def test_many_pages(self, tenant: Tenant) -> None:
        """More events than a page of the file, in each walk: by seq down and up, by offset."""
        client = audit(tenant)
        for start in range(0, 1200, 600):
            client.log_bulk(
                [{"message": f"m{i:04}", "actor": "many"} for i in range(start, start + 600)]
            )
        client.log(message="other", actor="someone")
        every = [f"m{i:04}" for i in range(1200)]
        for kwargs, want in [
            ({"order": "desc"}, every[::-1]),
            ({"order": "asc"}, every),
            ({"order": "desc", "order_by": "message", "max_results": 1100}, every[::-1][:1100]),
        ]:
            found = client.search(query="actor:many", limit=5, **kwargs)
            assert found.result.count == len(want)
            _, raw = _fetch(client, result_id=found.result.id, format=DownloadFormat.JSON)
            document = json.loads(raw)
            assert _messages(document) == want, kwargs
            _verified(document)

    def test_assert_search_restriction(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        found = client.search(query="", search_restriction={"source": ["web"]})
        body = {"result_id": found.result.id, "format": "csv"}
        ok = httpx.post(
            f"{tenant.url}/pangea/v1/download_results",
            json=body | {"assert_search_restriction": {"source": ["web"]}},
            headers=tenant.auth(),
        )
        assert ok.json()["status"] == "Success"
        refused = httpx.post(
            f"{tenant.url}/pangea/v1/download_results",
            json=body | {"assert_search_restriction": {"source": ["monitor"]}},
            headers=tenant.auth(),
        )
        assert refused.status_code == 400
        assert refused.json()["status"] == "ValidationError"


class TestErrors:
    def test_unknown_search_id(self, tenant: Tenant) -> None:
        with pytest.raises(NotFound):
            audit(tenant).download_results(result_id="pas_" + "0" * 32)

    def test_unknown_request_id(self, tenant: Tenant) -> None:
        with pytest.raises(NotFound):
            audit(tenant).download_results(request_id="prq_" + "0" * 32)

    def test_a_write_request_is_not_an_export(self, tenant: Tenant) -> None:
        client = audit(tenant)
        accepted = client.log_bulk_async([{"message": "w"}])
        with pytest.raises(NotFound):
            client.download_results(request_id=accepted.request_id)

    def test_both_ids(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        found = client.search(query="")
        with pytest.raises(ValidationException) as caught:
            client.download_results(result_id=found.result.id, request_id="prq_" + "0" * 32)
        assert caught.value.errors[0].source == "/result_id"

    def test_unknown_format(self, tenant: Tenant) -> None:
        client = _seed(tenant)
        found = client.search(query="")
        with pytest.raises(ValidationException) as caught:
            client.download_results(result_id=found.result.id, format="xml")
        assert caught.value.errors[0].source == "/format"

    def test_bad_export_fields(self, tenant: Tenant) -> None:
        for body, source in [
            ({"format": "pdf"}, "/format"),
            ({"order": "up"}, "/order"),
            ({"start": "yesterday-ish"}, "/start"),
            ({"verbose": "yes"}, "/verbose"),
        ]:
            resp = httpx.post(f"{tenant.url}/pangea/v1/export", json=body, headers=tenant.auth())
            assert resp.status_code == 400, body
            envelope = resp.json()
            assert set(envelope) == {
                "request_id", "request_time", "response_time", "status", "summary", "result",
            }  # fmt: skip
            assert envelope["status"] == "ValidationError"
            assert envelope["result"]["errors"][0]["source"] == source

    def test_bad_token(self, tenant: Tenant) -> None:
        with pytest.raises(UnauthorizedException):
            Audit("not-a-token", config=config(tenant)).export()


def _with_query(url: str, **changes: Any) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def _with_path(url: str, job: str | None = None, name: str | None = None) -> str:
    parts = urlsplit(url)
    prefix, old_job, old_name = parts.path.rsplit("/", 2)
    path = f"{prefix}/{job or old_job}/{name or old_name}"
    return urlunsplit(parts._replace(path=path))


class TestLink:
    """The capability URL: no token needed, gzip without Content-Encoding, and refused when
    guessed, altered, moved to another tenant or expired."""

    def _link(self, tenant: Tenant, actor: str) -> str:
        client = audit(tenant)
        client.log(message=f"secret of {actor}", actor=actor)
        found = client.search(query="")
        got = client.download_results(result_id=found.result.id, format=DownloadFormat.JSON)
        url: str = got.result.dest_url
        return url

    def test_no_token_and_raw_gzip(self, tenant: Tenant) -> None:
        url = self._link(tenant, "ann")
        resp = httpx.get(url)  # no Authorization header
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/gzip"
        assert "content-encoding" not in resp.headers
        assert resp.content[:2] == b"\x1f\x8b"
        assert _messages(json.loads(gzip.decompress(resp.content))) == ["secret of ann"]
        assert urlsplit(url).path.rsplit("/", 1)[1] in resp.headers["content-disposition"]

    def test_link_from_tenant_a_never_serves_tenant_b(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        mine = self._link(tenant, "ann")
        theirs = self._link(other_tenant, "ben")
        body = gzip.decompress(httpx.get(mine).content)
        assert b"ben" not in body
        assert _messages(json.loads(body)) == ["secret of ann"]
        # another tenant's job under this link's signature, and the reverse: refused
        their_job = urlsplit(theirs).path.rsplit("/", 2)[1]
        for forged in (
            _with_path(mine, job=their_job),
            _with_path(theirs, job=urlsplit(mine).path.rsplit("/", 2)[1]),
        ):
            resp = httpx.get(forged)
            assert resp.status_code == 401
            assert resp.json()["status"] == "Unauthorized"

    @pytest.mark.parametrize("part", ["sig", "expires", "job", "name", "no-sig"])
    def test_altered_link_is_refused(self, tenant: Tenant, part: str) -> None:
        url = self._link(tenant, "ann")
        query = dict(parse_qsl(urlsplit(url).query))
        job = urlsplit(url).path.rsplit("/", 2)[1]
        altered = {
            "sig": lambda: _with_query(
                url, sig=("A" if query["sig"][0] != "A" else "B") + query["sig"][1:]
            ),
            "expires": lambda: _with_query(url, expires=int(query["expires"]) + 3600),
            "job": lambda: _with_path(url, job=job[:-2] + ("AA" if job[-2:] != "AA" else "BB")),
            "name": lambda: _with_path(url, name="other.json.gz"),
            "no-sig": lambda: url.split("?")[0],
        }[part]()
        resp = httpx.get(altered)
        assert resp.status_code in (400, 401, 404)
        assert resp.json()["status"] in ("Unauthorized", "NotFound", "ValidationError")
        assert b"secret" not in resp.content
        with pytest.raises(DownloadFileError):
            audit(tenant).download_file(altered)

    def test_guessed_link(self, tenant: Tenant) -> None:
        url = self._link(tenant, "ann")
        resp = httpx.get(_with_query(url, sig="A" * 43))
        assert resp.status_code == 401


@pytest.fixture(scope="module")
def short_links(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"AXONFLOW_TELEMETRY": "off", "TRAILKEEP_EXPORT_LINK_TTL": "1"}
    with running_server(tmp_path_factory.mktemp("short"), env=env) as running:
        yield running


def test_expired_link_is_refused(short_links: Server) -> None:
    tenant = new_tenant(short_links)
    client = _seed(tenant)
    ex = client.export(format=DownloadFormat.JSON)
    _ready(client, ex.request_id)
    got = client.download_results(request_id=ex.request_id, format=DownloadFormat.JSON)
    time.sleep(2.1)
    resp = httpx.get(got.result.dest_url)
    assert resp.status_code == 401
    assert resp.json()["status"] == "Unauthorized"
    assert "expired" in resp.json()["summary"]
    with pytest.raises(DownloadFileError):
        client.download_file(got.result.dest_url)
    fresh = client.download_results(request_id=ex.request_id, format=DownloadFormat.JSON)
    assert (
        len(json.loads(gzip.decompress(client.download_file(fresh.result.dest_url).file))["events"])
        == 4
    )


class TestAsync:
    """``AuditAsync``: the same calls and files."""

    def test_export_and_search_download(self, tenant: Tenant) -> None:
        _seed(tenant)

        async def run() -> None:
            client = AuditAsync(tenant.keys["admin"].token, config=config(tenant))
            try:
                ex = await client.export(format=DownloadFormat.JSON, verbose=True)
                assert ex.status == "Accepted"
                assert ex.http_status == 202
                for _ in range(100):
                    try:
                        done = await client.poll_result(request_id=ex.request_id)
                        break
                    except AcceptedRequestException:
                        await asyncio.sleep(0.05)
                assert done.status == "Success"
                assert done.raw_result == {"count": 4}  # AuditAsync parses it as a dict: no .result
                got = await client.download_results(
                    request_id=ex.request_id, format=DownloadFormat.JSON
                )
                file = await client.download_file(got.result.dest_url)
                assert file.content_type == "application/gzip"
                assert file.filename.endswith(".json.gz")
                document = json.loads(gzip.decompress(file.file))
                assert _messages(document) == ["one", "two", "three", "=four"]
                _verified(document)
                found = await client.search(query="source:web", order="asc")
                got = await client.download_results(result_id=found.result.id)
                file = await client.download_file(got.result.dest_url)
                rows = list(csv.DictReader(io.StringIO(gzip.decompress(file.file).decode())))
                assert [r["message"] for r in rows] == ["two", "three"]
                with pytest.raises(NotFound):
                    await client.download_results(result_id="pas_" + "0" * 32)
            finally:
                await client.close()

        asyncio.run(run())


class TestIsolation:
    """Another tenant's search id or export request id is ``NotFound``."""

    def test_search_of_another_tenant(self, tenant: Tenant, other_tenant: Tenant) -> None:
        found = _seed(tenant).search(query="")
        with pytest.raises(NotFound):
            audit(other_tenant).download_results(result_id=found.result.id)

    def test_export_of_another_tenant(self, tenant: Tenant, other_tenant: Tenant) -> None:
        ex = _seed(tenant).export()
        with pytest.raises(NotFound):
            audit(other_tenant).download_results(request_id=ex.request_id)
        with pytest.raises(NotFound):
            audit(other_tenant).poll_result(request_id=ex.request_id)
