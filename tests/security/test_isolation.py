"""Tenant isolation: every route of the native API and the dialects, for every role, with the
caller's own ids and another tenant's, answers the right status and never shows, changes or
proves another tenant's events.

Routes are taken from the app's OpenAPI document, so a new route fails
``test_every_route_is_classified`` until it is given a row in ``ROUTES``.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
import pytest
import pytest_asyncio
from fastapi import FastAPI

from tests.conftest import Keys, make_keys
from trailkeep.api.app import create_app
from trailkeep.api.services import Services
from trailkeep.model.tenant import Role
from trailkeep.service.admin_trail import Actor
from trailkeep.settings import Settings

pytestmark = pytest.mark.asyncio

#: Appears only in globex's event: no answer to an acme caller may contain it.
MARKER = "globex-confidential-7f3a"
PUBLIC, WRITE, READ, ADMIN, OPERATE = "public", "write", "read", "admin", "operate"
#: Either permission will do (Pangea's request polling: a write or an export).
WRITE_OR_READ = "write|read"
CALLERS = ["writer", "reader", "admin", "operator", "operator+org", "none", "bad"]
_names = itertools.count()


@dataclass(frozen=True)
class Ids:
    """What a tenant's own routes are called with."""

    tenant: str
    event: str
    export: str
    #: A Pangea ``dest_url`` (path and query) to the tenant's events: a capability.
    pangea_link: str = ""


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None


Build = Callable[[Ids, Services], Call]


@dataclass(frozen=True)
class Route:
    need: str
    build: Build
    #: The route names a tenant or event in its path/body, so "another tenant's ids" applies.
    takes_ids: bool = False


def _get(path: str, **params: Any) -> Build:
    return lambda ids, _s: Call("GET", path.format(ids=ids), params or None)


def _post(path: str, body: Any) -> Build:
    return lambda ids, _s: Call("POST", path.format(ids=ids), None, body)


def _link(ids: Ids, _s: Services) -> Call:
    parts = urlsplit(ids.pangea_link)
    return Call("GET", parts.path, dict(parse_qsl(parts.query)))


def _revoke(ids: Ids, services: Services) -> Call:
    key = services.tenants.create_key(ids.tenant, Role.READER).key.client_id
    return Call("DELETE", f"/v1/tenants/{ids.tenant}/keys/{key}")


def _prune(ids: Ids, services: Services) -> Call:
    services.tenants.update_settings(ids.tenant, {"retention_days": 30})
    return Call("POST", "/v1/tenant/prune", json={})


EVENT = {"action": "acme.write", "actor": {"id": "writer-1"}}
ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v1/events"): Route(WRITE, _post("/v1/events", EVENT)),
    ("POST", "/v1/events/batch"): Route(WRITE, _post("/v1/events/batch", {"events": [EVENT]})),
    ("GET", "/v1/events"): Route(READ, _get("/v1/events")),
    ("GET", "/v1/events/{event_id}"): Route(READ, _get("/v1/events/{ids.event}"), True),
    ("GET", "/v1/facets"): Route(READ, _get("/v1/facets")),
    ("GET", "/v1/events/{event_id}/proof"): Route(READ, _get("/v1/events/{ids.event}/proof"), True),
    ("POST", "/v1/events/{event_id}/redact"): Route(
        ADMIN, _post("/v1/events/{ids.event}/redact", {"fields": ["message"]}), True
    ),
    ("GET", "/v1/log/checkpoint"): Route(READ, _get("/v1/log/checkpoint")),
    ("GET", "/v1/log/proof/inclusion"): Route(
        READ, _get("/v1/log/proof/inclusion", index=0, size=1)
    ),
    ("GET", "/v1/log/proof/consistency"): Route(
        READ, _get("/v1/log/proof/consistency", **{"from": 1, "to": 1})
    ),
    ("GET", "/v1/log/leaves"): Route(READ, _get("/v1/log/leaves", start=0, end=1)),
    ("GET", "/v1/log/key"): Route(PUBLIC, _get("/v1/log/key")),
    ("GET", "/v1/stream"): Route(READ, _get("/v1/stream", after_seq=-1)),
    ("POST", "/v1/exports"): Route(READ, _post("/v1/exports", {})),
    ("GET", "/v1/exports/{export_id}"): Route(
        READ, _get("/v1/exports/{ids.export}", count="true"), True
    ),
    ("GET", "/v1/exports/{export_id}/download"): Route(
        READ, _get("/v1/exports/{ids.export}/download"), True
    ),
    ("GET", "/v1/tenant"): Route(ADMIN, _get("/v1/tenant")),
    ("PUT", "/v1/tenant"): Route(ADMIN, lambda ids, _s: Call("PUT", "/v1/tenant", json={})),
    ("POST", "/v1/tenant/prune"): Route(ADMIN, _prune),
    ("GET", "/v1/tenants"): Route(OPERATE, _get("/v1/tenants")),
    ("POST", "/v1/tenants"): Route(
        OPERATE, lambda ids, _s: Call("POST", "/v1/tenants", json={"name": f"t{next(_names)}"})
    ),
    # An admin key manages its own tenant's keys; an operator any tenant's (named in the path).
    ("GET", "/v1/tenants/{tenant_id}/keys"): Route(
        ADMIN, _get("/v1/tenants/{ids.tenant}/keys"), True
    ),
    ("POST", "/v1/tenants/{tenant_id}/keys"): Route(
        ADMIN, _post("/v1/tenants/{ids.tenant}/keys", {"role": "reader"}), True
    ),
    ("DELETE", "/v1/tenants/{tenant_id}/keys/{client_id}"): Route(ADMIN, _revoke, True),
    ("GET", "/healthz"): Route(PUBLIC, _get("/healthz")),
    ("GET", "/readyz"): Route(PUBLIC, _get("/readyz")),
    # dialects
    ("GET", "/api/v1/auditing/items"): Route(READ, _get("/api/v1/auditing/items")),
    ("GET", "/api/v1/auditing/items/{audit_id}"): Route(
        READ, _get("/api/v1/auditing/items/{ids.event}"), True
    ),
    ("POST", "/axonflow/api/v1/audit/search"): Route(
        READ, _post("/axonflow/api/v1/audit/search", {})
    ),
    ("GET", "/axonflow/api/v1/audit/tenant/{tenant_id}"): Route(
        READ, _get("/axonflow/api/v1/audit/tenant/{ids.tenant}"), True
    ),
    ("POST", "/axonflow/api/v1/audit/tool-call"): Route(
        WRITE, _post("/axonflow/api/v1/audit/tool-call", {"tool_name": "t", "success": True})
    ),
    ("POST", "/axonflow/api/audit/llm-call"): Route(
        WRITE,
        _post(
            "/axonflow/api/audit/llm-call",
            {"provider": "openai", "model": "m", "client_id": "c", "success": True},
        ),
    ),
    ("GET", "/agilicus/v1/audits"): Route(READ, _get("/agilicus/v1/audits")),
    ("GET", "/agilicus/v1/auth_audits"): Route(READ, _get("/agilicus/v1/auth_audits")),
    ("GET", "/wasabi/api/data/audit"): Route(READ, _get("/wasabi/api/data/audit")),
    ("GET", "/wasabi/api/data/audit/filters"): Route(READ, _get("/wasabi/api/data/audit/filters")),
    ("GET", "/wasabi/api/data/audit/{audit_id}"): Route(
        READ, _get("/wasabi/api/data/audit/{ids.event}"), True
    ),
    ("POST", "/pangea/v1/log"): Route(WRITE, _post("/pangea/v1/log", {"event": {"message": "m"}})),
    ("POST", "/pangea/v2/log"): Route(
        WRITE, _post("/pangea/v2/log", {"events": [{"event": {"message": "m"}}]})
    ),
    ("POST", "/pangea/v2/log_async"): Route(
        WRITE, _post("/pangea/v2/log_async", {"events": [{"event": {"message": "m"}}]})
    ),
    ("POST", "/pangea/v1/log_stream"): Route(
        WRITE, _post("/pangea/v1/log_stream", {"logs": [{"log_id": "l", "data": {"type": "s"}}]})
    ),
    ("POST", "/pangea/v1/search"): Route(READ, _post("/pangea/v1/search", {"query": ""})),
    ("POST", "/pangea/v1/root"): Route(READ, _post("/pangea/v1/root", {})),
    ("POST", "/pangea/v1/results"): Route(
        READ, _post("/pangea/v1/results", {"id": "pas_" + "0" * 32}), True
    ),
    ("GET", "/pangea/request/{request_id}"): Route(
        WRITE_OR_READ, _get("/pangea/request/prq_" + "0" * 32), True
    ),
    ("POST", "/pangea/v1/export"): Route(READ, _post("/pangea/v1/export", {"format": "json"})),
    ("POST", "/pangea/v1/download_results"): Route(
        READ, _post("/pangea/v1/download_results", {"result_id": "pas_" + "0" * 32}), True
    ),
    # A capability: the link alone opens it, whoever calls (TestPangeaDownloadLinks).
    ("GET", "/pangea/download/{job}/{name}"): Route(PUBLIC, _link),
}
#: Routes whose ids exist only after an earlier call of the same client (a Pangea search id,
#: an accepted request id), called here with an unknown id: every caller allowed past the
#: credential check gets NotFound. tests/compat/test_pangea.py tries another tenant's real ids.
_STATEFUL = {
    ("POST", "/pangea/v1/results"),
    ("GET", "/pangea/request/{request_id}"),
    ("POST", "/pangea/v1/download_results"),
}
_ROLE_CAN = {
    "writer": {WRITE},
    "reader": {READ},
    "admin": {WRITE, READ, ADMIN},
    "operator": {OPERATE},
    "operator+org": {WRITE, READ, ADMIN, OPERATE},
}


@dataclass
class World:
    app: FastAPI
    services: Services
    acme: Keys
    globex: Keys
    operator: str
    own: Ids
    other: Ids

    def headers(self, caller: str) -> dict[str, str]:
        tokens = {"writer": self.acme.writer, "reader": self.acme.reader, "admin": self.acme.admin}
        if caller in tokens:
            return {"Authorization": f"Bearer {tokens[caller]}"}
        if caller == "operator":
            return {"Authorization": f"Bearer {self.operator}"}
        if caller == "operator+org":
            return {"Authorization": f"Bearer {self.operator}", "X-Org-ID": "acme"}
        if caller == "bad":  # a real client id with a wrong secret
            return {"Authorization": f"Bearer {self.acme.reader.split('.')[0]}.tks_wrong"}
        return {}


async def _seed(services: Services, tenant: str, action: str, actor: str) -> Ids:
    (appended,) = await services.events.ingest(
        tenant, [{"action": action, "actor": {"id": actor}, "message": actor}], batch=False
    )
    services.log.sign_pending()
    from trailkeep.api.params import make_selection

    job = services.exports.create(
        tenant, make_selection({}, None, None, None), "jsonl", Actor("test", "cli")
    )
    return Ids(tenant, appended.event.id, job.id)


@pytest_asyncio.fixture
async def world(settings: Settings, services: Services) -> World:
    acme, globex = make_keys(services, "acme"), make_keys(services, "globex")
    own = await _seed(services, "acme", "acme.seed", "acme-actor")
    other = await _seed(services, "globex", MARKER, MARKER)
    operator = services.tenants.create_key(None, Role.OPERATOR).token
    app = create_app(settings, services)
    own = replace(own, pangea_link=await _pangea_link(app, acme.reader))
    other = replace(other, pangea_link=await _pangea_link(app, globex.reader))
    return World(app, services, acme, globex, operator, own, other)


async def _pangea_link(app: FastAPI, token: str) -> str:
    """A Pangea download link to all of a tenant's events, as its reader key gets one."""
    headers = {"Authorization": f"Bearer {token}"}
    search = Call("POST", "/pangea/v1/search", json={"query": ""})
    status, body = await call(app, search, headers, timeout=60)
    assert status == 200, body
    ask = {"result_id": orjson.loads(body)["result"]["id"], "format": "json"}
    download = Call("POST", "/pangea/v1/download_results", json=ask)
    status, body = await call(app, download, headers, timeout=60)
    assert status == 200, body
    link: str = orjson.loads(body)["result"]["dest_url"]
    return link


async def call(
    app: FastAPI, call: Call, headers: dict[str, str], timeout: float = 5.0
) -> tuple[int, bytes]:
    """Drive the ASGI app directly; a streaming answer is read for a moment, then dropped."""
    query = urlencode(call.params or {})
    body = orjson.dumps(call.json) if call.json is not None else b""
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if call.json is not None:
        raw += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": call.method, "path": call.path, "raw_path": call.path.encode(),
        "query_string": query.encode(), "headers": raw, "client": ("127.0.0.1", 5),
        "server": ("t", 80), "scheme": "http", "root_path": "",
    }  # fmt: skip
    status, chunks = 0, []
    done, disconnect = asyncio.Event(), asyncio.Event()
    sent_body = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    task = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(done.wait(), 0.5 if call.path == "/v1/stream" else timeout)
    except TimeoutError:
        assert call.path == "/v1/stream", f"{call.method} {call.path} did not answer"
    disconnect.set()
    try:
        await asyncio.wait_for(task, timeout)
    except TimeoutError:
        task.cancel()
    return status, b"".join(chunks)


def expected(route: Route, caller: str) -> set[int]:
    """Statuses allowed for ``caller`` on its own tenant's ids."""
    if route.need == PUBLIC:
        return {200}
    if caller in ("none", "bad"):
        return {401}
    if any(need in _ROLE_CAN[caller] for need in route.need.split("|")):
        return {200, 201, 202, 204}
    if caller == "operator" and route.need != OPERATE:
        return {400}  # an operator must say which tenant it acts in
    return {403}


def _idents(ids: Ids) -> list[bytes]:
    return [ids.event.encode(), ids.export.encode()]


class TestRoutes:
    """The matrix below covers exactly the routes the app publishes."""

    async def test_every_route_is_classified(self, world: World) -> None:
        published = {
            (method.upper(), path)
            for path, item in world.app.openapi()["paths"].items()
            for method in item
        }
        assert published == set(ROUTES)


@pytest.mark.parametrize("route_key", list(ROUTES), ids=lambda k: f"{k[0]} {k[1]}")
class TestMatrix:
    """Each role gets its right status, and nothing of another tenant, on each route."""

    async def test_own_tenant(self, world: World, route_key: tuple[str, str]) -> None:
        route = ROUTES[route_key]
        failures = []
        for caller in CALLERS:
            status, body = await call(
                world.app, route.build(world.own, world.services), world.headers(caller)
            )
            want = expected(route, caller)
            if route_key[1] == "/axonflow/api/v1/audit/tenant/{tenant_id}" and caller == "operator":
                want = {200}  # AxonFlow names the tenant in the path: operators may read any
            if "/keys" in route_key[1] and caller == "operator":
                want = {200, 201, 204}  # the tenant is named in the path
            if route_key in _STATEFUL and 200 in want:
                want = {404}
            if status not in want:
                failures.append(f"{caller}: {status} not in {want}: {body[:200]!r}")
            if MARKER.encode() in body or any(i in body for i in _idents(world.other)):
                failures.append(f"{caller}: sees globex's data")
        assert not failures, "\n".join(failures)
        await _globex_untouched(world)

    async def test_other_tenants_ids(self, world: World, route_key: tuple[str, str]) -> None:
        route = ROUTES[route_key]
        if route.need in (PUBLIC, OPERATE):
            pytest.skip("public routes hold no tenant data; operators administer every tenant")
        failures = []
        for caller in ("writer", "reader", "admin", "operator+org"):
            if route.takes_ids:
                request, headers = route.build(world.other, world.services), world.headers(caller)
            else:  # name the other tenant in X-Org-ID instead
                request = route.build(world.own, world.services)
                headers = {**world.headers(caller), "X-Org-ID": "globex"}
                if caller == "operator+org":
                    continue  # an operator may name any tenant: that is its job
            if caller == "operator+org" and "{tenant_id}" in route_key[1]:
                continue  # the tenant is named in the path, which an operator may do
            status, body = await call(world.app, request, headers)
            # a 404 may echo the id asked for; anything else of globex's is a leak
            body = body.replace(request.path.rsplit("/", 2)[-1].encode(), b"")
            body = body.replace(request.path.rsplit("/", 2)[-2].encode(), b"")
            if 200 <= status < 300:
                failures.append(f"{caller}: {status} for globex's ids: {body[:200]!r}")
            if status not in (403, 404, 400):
                failures.append(f"{caller}: {status}, want 403/404")
            if MARKER.encode() in body or any(i in body for i in _idents(world.other)):
                failures.append(f"{caller}: sees globex's data")
        assert not failures, "\n".join(failures)
        await _globex_untouched(world)


async def _globex_untouched(world: World) -> None:
    """globex still holds exactly its one seeded event, unredacted (besides the record of
    the seed's export, which the server writes)."""
    headers = {"Authorization": f"Bearer {world.globex.reader}"}
    status, body = await call(world.app, Call("GET", "/v1/events"), headers)
    events = [e for e in orjson.loads(body)["events"] if e.get("action") != "export.create"]
    assert status == 200
    assert [(e["id"], e.get("message")) for e in events] == [(world.other.event, MARKER)]


class TestPangeaDownloadLinks:
    """A Pangea download link serves its own tenant's events only, to anyone holding it, and
    another tenant's result set under its signature is refused."""

    async def test_link_serves_its_tenant_only(self, world: World) -> None:
        for ids, own_marker in ((world.own, b"acme-actor"), (world.other, MARKER.encode())):
            status, body = await call(world.app, _link(ids, world.services), {})
            assert status == 200
            events = orjson.loads(gzip.decompress(body))["events"]
            messages = {e["envelope"]["event"]["message"].encode() for e in events}
            assert own_marker in messages
            if ids is world.own:
                assert MARKER.encode() not in gzip.decompress(body)

    async def test_another_tenants_job_is_refused(self, world: World) -> None:
        mine, theirs = urlsplit(world.own.pangea_link), urlsplit(world.other.pangea_link)
        their_job = theirs.path.split("/")[-2]
        prefix, _job, name = mine.path.rsplit("/", 2)
        forged = Call("GET", f"{prefix}/{their_job}/{name}", dict(parse_qsl(mine.query)))
        for caller in ("none", "reader", "admin"):
            status, body = await call(world.app, forged, world.headers(caller))
            assert status == 401
            assert orjson.loads(body)["status"] == "Unauthorized"


class TestBodyCannotNameTenant:
    """A tenant_id in an event body never moves the event into that tenant."""

    async def test_tenant_id_in_body(self, world: World) -> None:
        body = {"action": "x", "tenant_id": "globex"}
        for path, payload in [("/v1/events", body), ("/v1/events/batch", {"events": [body]})]:
            status, _ = await call(
                world.app, Call("POST", path, json=payload), world.headers("writer")
            )
            assert status in (201, 422)
        await _globex_untouched(world)
