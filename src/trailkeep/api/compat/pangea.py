"""Pangea's Secure Audit Log API (the ``pangea-sdk`` client), under ``/pangea``.

``Audit(token, config=PangeaConfig(base_url_template="http://HOST:PORT/pangea"))`` works
unchanged: ``log``/``log_event`` (``/v1/log``), ``log_bulk`` (``/v2/log``),
``log_bulk_async`` (``/v2/log_async``, 202 then ``GET /request/{id}``), ``search``
(``/v1/search``), ``results`` (``/v1/results``), ``root`` (``/v1/root``), ``export``
(``/v1/export``, 202 then ``GET /request/{id}``) and ``download_results``
(``/v1/download_results``, a capability URL served at ``/download/...``:
``_pangea_export``), each answered in Pangea's strict envelope (``_pangea_wire``). Hashes,
roots and proofs are those of Pangea's tree, which storage keeps beside the RFC 9162 tree
for every event of the tenant whichever surface wrote it (DESIGN §3), so the SDK's own checks
(``verify=True``, ``verify_events``, ``verify_consistency``) pass.
Field mapping: ``docs/dialects.md``.

By default roots are unpublished: a search answers ``root: null`` and an ``unpublished_root``
the membership proofs lead to, so the SDK never looks roots up on Arweave. With
``pangea_published_roots``, events covered by the latest signed checkpoint are published, with
``leaf_index`` and proofs to the root at the checkpoint's size. ``/v1/root`` serves every size
with its ``published_at`` (when the tree reached it) and consistency proof.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from hashlib import sha256
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from trailkeep.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from trailkeep.merkle import NodeID
from trailkeep.model.event import StoredEvent
from trailkeep.model.pangea import envelope, envelope_hash
from trailkeep.model.tenant import Permission, Principal
from trailkeep.model.timeparse import format_time, utcnow
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.service.admin_trail import Actor, record_admin_event
from trailkeep.service.events import EventService
from trailkeep.service.pangea_tree import PangeaProofs
from trailkeep.storage.base import Appended

from ..deps import AuthHeader, EventsDep, OrgHeader, ReadPrincipal, ReadTenant, ServicesDep
from ._common import WritePrincipal, lower_bound, upper_bound
from ._common import native_content as checked_content
from ._pangea_events import (
    auth0_content,
    check_event,
    compile_query,
    native_content,
    restriction,
    sort_path,
)
from ._pangea_export import FORMATS, DownloadLinks, file_chunks, filename
from ._pangea_signing import as_signed
from ._pangea_state import REQUEST_TTL, RESULT_TTL, Accepted, PangeaState, ResultSet
from ._pangea_wire import BadOffsetError, FieldError, PangeaRoute, answer, new_id
from ._trees import all_of

__all__ = ["router", "tree_name"]

router = APIRouter(prefix="/pangea", tags=["dialect: Pangea"], route_class=PangeaRoute)

DEFAULT_LIMIT: Final = 20
MAX_RESULTS: Final = 10_000
MAX_BULK: Final = 1_000


def tree_name(tenant_id: str) -> str:
    """The name of a tenant's Pangea tree: stable, 64 hex like Pangea's, and not its id."""
    return sha256(f"trailkeep pangea tree\n{tenant_id}".encode()).hexdigest()


def _state(request: Request) -> PangeaState:
    state: PangeaState | None = getattr(request.app.state, "pangea", None)
    if state is None:
        state = request.app.state.pangea = PangeaState()
    return state


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise FieldError("the body is not JSON", source="/", pangea_code="InvalidJSON") from None
    if not isinstance(body, dict):
        raise FieldError("the body must be an object", source="/", pangea_code="InvalidType")
    return body


Body = Annotated[dict[str, Any], Depends(_body)]


def _flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise FieldError(f"{key} must be a boolean", source=f"/{key}", pangea_code="InvalidType")
    return value


def _int(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if value is None:
        return default
    if type(value) is not int or not low <= value <= high:
        raise FieldError(
            f"{key} must be a whole number from {low} to {high}",
            source=f"/{key}",
            pangea_code="InvalidValue",
        )
    return value


def _optional_text(body: dict[str, Any], key: str, where: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise FieldError(f"{where} must be a string", source=where, pangea_code="InvalidType")
    return value


# -- logging ----------------------------------------------------------------------------------


def _content(item: dict[str, Any], where: str) -> dict[str, Any]:
    event = check_event(item.get("event"), f"{where}/event")
    signature = _optional_text(item, "signature", f"{where}/signature")
    public_key = _optional_text(item, "public_key", f"{where}/public_key")
    event = as_signed(event, signature, public_key)
    return checked_content(native_content(event, signature, public_key))


def _log_result(stored: StoredEvent, verbose: bool) -> dict[str, Any]:
    env = envelope(stored.content, stored.received_at)
    result: dict[str, Any] = {"hash": envelope_hash(env).hex()}
    if verbose:
        result["envelope"] = env
    return result


def _tree_proofs(
    proofs: PangeaProofs, seq: int, prev_size: int | None
) -> tuple[str, str, list[str] | None]:
    """The root of the tree that ends with ``seq``, its membership proof, and consistency."""
    size = seq + 1
    root = proofs.root(size).hex()
    membership = proofs.membership(seq, size)
    consistency = None
    if prev_size is not None and 0 < prev_size < size:
        consistency = proofs.consistency(prev_size, size)
    return root, membership, consistency


async def _ingest(
    request: Request, events: EventService, tenant: str, contents: list[dict[str, Any]]
) -> list[Appended]:
    appended = await events.ingest(tenant, contents, batch=len(contents) > 1)
    fresh = sum(1 for a in appended if not a.replayed)
    request.app.state.metrics.events_ingested.inc(fresh)
    return appended


@router.post("/v1/log")
async def log_event(
    request: Request,
    body: Body,
    principal: WritePrincipal,
    events: EventsDep,
    services: ServicesDep,
) -> Response:
    """One event; with ``verbose`` its envelope, the unpublished root, membership proof and,
    given a ``prev_root`` this server handed out, the consistency proof from it."""
    tenant = principal.tenant_id
    assert tenant is not None
    verbose = _flag(body, "verbose", False)
    prev_root = _optional_text(body, "prev_root", "/prev_root")
    (appended,) = await _ingest(request, events, tenant, [_content(body, "")])
    stored = appended.event
    result = _log_result(stored, verbose)
    if verbose:
        state = _state(request)
        prev_size = state.roots.get((tenant, prev_root)) if prev_root else None
        proofs = PangeaProofs(services.store, tenant)
        root, membership, consistency = await run_in_threadpool(
            _tree_proofs, proofs, stored.seq, prev_size
        )
        state.roots.put((tenant, root), stored.seq + 1)
        result |= {"unpublished_root": root, "membership_proof": membership}
        if consistency is not None:
            result["consistency_proof"] = consistency
    return answer(result)


def _bulk_contents(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("events")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BULK:
        raise FieldError(
            f"events must be a list of 1 to {MAX_BULK} items",
            source="/events",
            pangea_code="InvalidValue",
        )
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FieldError(
                f"/events/{i} must be an object", source=f"/events/{i}", pangea_code="InvalidType"
            )
        out.append(_content(item, f"/events/{i}"))
    return out


@router.post("/v2/log")
async def log_bulk(
    request: Request, body: Body, principal: WritePrincipal, events: EventsDep
) -> Response:
    """Many events, all or none; ``{"results": [...]}`` in order (envelopes when verbose)."""
    assert principal.tenant_id is not None
    verbose = _flag(body, "verbose", False)
    appended = await _ingest(request, events, principal.tenant_id, _bulk_contents(body))
    return answer({"results": [_log_result(a.event, verbose) for a in appended]})


@router.post("/v2/log_async")
async def log_bulk_async(
    request: Request, body: Body, principal: WritePrincipal, events: EventsDep
) -> Response:
    """Many events, accepted (202) and written in the background; poll ``/request/{id}``."""
    tenant = principal.tenant_id
    assert tenant is not None
    verbose = _flag(body, "verbose", False)
    contents = _bulk_contents(body)

    async def write() -> dict[str, Any]:
        appended = await _ingest(request, events, tenant, contents)
        return {"results": [_log_result(a.event, verbose) for a in appended]}

    request_id = new_id("prq_")
    _state(request).requests.put(request_id, Accepted(tenant, asyncio.create_task(write())))
    return _accepted(request, request_id)


def _accepted(request: Request, request_id: str) -> Response:
    location = str(request.url_for("poll_request", request_id=request_id))
    result = {"ttl_mins": 60, "retry_counter": 0, "location": location}
    return answer(result, status="Accepted", http=202, request_id=request_id)


def _principal(
    services: ServicesDep, authorization: str | None, org: str | None, *needs: Permission
) -> Principal:
    """The key of a request that any one of ``needs`` allows."""
    refused: PermissionDeniedError | None = None
    for permission in needs:
        try:
            principal = services.auth.authenticate(authorization, org, permission)
        except PermissionDeniedError as exc:
            refused = exc
            continue
        if principal.tenant_id is None:
            raise InvalidInputError("operator keys must name a tenant with the X-Org-ID header")
        return principal
    assert refused is not None
    raise refused


@router.get("/request/{request_id}", name="poll_request")
async def poll_request(
    request: Request,
    request_id: str,
    services: ServicesDep,
    authorization: AuthHeader,
    org: OrgHeader = None,
) -> Response:
    """An accepted write or export: 202 ``Accepted`` while it runs, then its outcome (the
    write's result; ``{"count"}`` for an export). Only for the key's tenant (another tenant's
    request id is ``NotFound``) and a key that may do what was accepted (write or read)."""
    principal = await run_in_threadpool(
        _principal, services, authorization, org, Permission.WRITE, Permission.READ
    )
    assert principal.tenant_id is not None
    accepted = await _accepted_request(request, services, principal.tenant_id, request_id)
    if accepted is None:
        raise NotFoundError(f"no request {request_id!r} for this tenant (or it expired)")
    if not principal.can(accepted.permission):
        raise PermissionDeniedError(
            f"a {principal.role.value} key may not poll this request; it needs"
            f" {accepted.permission.value}"
        )
    if not accepted.task.done():
        return _accepted(request, request_id)
    outcome = accepted.task.result()
    if isinstance(outcome, ResultSet):
        outcome = {"count": outcome.count}
    return answer(outcome, request_id=request_id)


@router.post("/v1/log_stream")
async def log_stream(
    request: Request, body: Body, principal: WritePrincipal, events: EventsDep
) -> Response:
    """Auth0 log-stream records (``{"logs": [{"log_id", "data"}]}``), one event each, all or
    none (mapping: ``auth0_content``); answers ``{}``."""
    assert principal.tenant_id is not None
    logs = body.get("logs")
    if not isinstance(logs, list) or not 1 <= len(logs) <= MAX_BULK:
        raise FieldError(
            f"logs must be a list of 1 to {MAX_BULK} records",
            source="/logs",
            pangea_code="InvalidValue",
        )
    contents = [checked_content(auth0_content(item, f"/logs/{i}")) for i, item in enumerate(logs)]
    await _ingest(request, events, principal.tenant_id, contents)
    return answer({})


# -- search -----------------------------------------------------------------------------------


def _time_bound(body: dict[str, Any], key: str) -> str | None:
    value = _optional_text(body, key, f"/{key}")
    try:
        if key == "end":
            return upper_bound(value, key, inclusive=True)
        return lower_bound(value, key)
    except InvalidInputError as exc:
        raise FieldError(exc.message, source=f"/{key}", pangea_code="InvalidValue") from None


def _spec(body: dict[str, Any], *, search: bool, order: str) -> dict[str, Any]:
    """What a search (or, without ``query`` and ``search_restriction``, an export) selects,
    checked now and with its times made absolute: ``ResultSet.spec``.

    Args:
        order: the default ``order``.
    """
    query = _optional_text(body, "query", "/query") if search else None
    given = body.get("search_restriction") if search else None
    compile_query(query)
    restriction(given)
    start = _time_bound(body, "start") or (_time_bound(body, "last") if search else None)
    order = _optional_text(body, "order", "/order") or order
    if order not in ("asc", "desc"):
        raise FieldError("order must be asc or desc", source="/order", pangea_code="InvalidValue")
    order_by = _optional_text(body, "order_by", "/order_by")
    sort_path(order_by)
    return {
        "query": query,
        "restriction": given,
        "start": start,
        "end": _time_bound(body, "end"),
        "order": order,
        "order_by": order_by,
    }


def _result_set(
    tenant: str,
    spec: dict[str, Any],
    *,
    size: int,
    published: int,
    count: int,
    verbose: bool,
    expires_at: str,
) -> ResultSet:
    """The result set ``spec`` selects, frozen at ``size`` (``spec`` was checked by ``_spec``)."""
    return ResultSet(
        tenant_id=tenant,
        spec=spec,
        where=all_of([compile_query(spec["query"]), restriction(spec["restriction"])]),
        start=spec["start"],
        end=spec["end"],
        sort=Sort.ASC if spec["order"] == "asc" else Sort.DESC,
        order_by=sort_path(spec["order_by"]),
        size=size,
        published=published,
        count=count,
        verbose=verbose,
        expires_at=expires_at,
    )


def _query(rs: ResultSet, limit: int, offset: int) -> EventQuery:
    return EventQuery(
        where=rs.where,
        start=rs.start,
        end=rs.end,
        sort=rs.sort,
        order_by=rs.order_by,
        by_seq=rs.order_by is None,
        max_seq=rs.size - 1,
        limit=limit,
        offset=offset,
    )


async def _freeze(
    spec: dict[str, Any], tenant: str, services: ServicesDep, *, verbose: bool, ttl: float
) -> ResultSet:
    """``spec``'s result set at the current log size, not counted yet (``count`` 0)."""
    size = await run_in_threadpool(PangeaProofs(services.store, tenant).size)
    published = 0
    if services.settings.pangea_published_roots:
        checkpoint = await run_in_threadpool(services.store.latest_checkpoint, tenant)
        published = 0 if checkpoint is None else min(checkpoint.size, size)
    return _result_set(
        tenant,
        spec,
        size=size,
        published=published,
        count=0,
        verbose=verbose,
        expires_at=format_time(utcnow() + timedelta(seconds=ttl)),
    )


async def _counted(rs: ResultSet, events: EventService, max_results: int | None) -> ResultSet:
    """``rs`` with its matches counted (at most ``max_results``)."""
    total = 0 if rs.size == 0 else await events.acount(rs.tenant_id, _query(rs, 1, 0))
    return replace(rs, count=total if max_results is None else min(total, max_results))


# A search's result set and an export's are kept as dialect notes in the database (the
# store's ``put_note``), so every server process on it answers ``/v1/results``,
# ``/request/{id}`` and ``download_results`` for them. A write's outcome (``log_async``) and
# the roots handed out (``prev_root``) stay in the memory of the process that made them.


def _note(rs: ResultSet, count: int | None) -> bytes:
    """A result set as its dialect note holds it (``count`` None: not counted yet)."""
    data = {
        "v": 1,
        "t": rs.tenant_id,
        "q": rs.spec,
        "n": rs.size,
        "p": rs.published,
        "c": count,
        "b": rs.verbose,
        "x": rs.expires_at,
    }
    return orjson.dumps(data)


async def _put_result(services: ServicesDep, key: str, rs: ResultSet, count: int | None) -> None:
    note = _note(rs, count)
    await run_in_threadpool(services.store.put_note, rs.tenant_id, key, note, rs.expires_at)


async def _noted(services: ServicesDep, tenant: str, key: str) -> tuple[ResultSet, bool] | None:
    """The result set kept as ``key``, and whether it was counted (else ``count`` is 0)."""
    note = await run_in_threadpool(services.store.get_note, tenant, key, format_time(utcnow()))
    if note is None:
        return None
    data = orjson.loads(note)
    rs = _result_set(
        tenant,
        data["q"],
        size=data["n"],
        published=data["p"],
        count=data["c"] or 0,
        verbose=data["b"],
        expires_at=data["x"],
    )
    return rs, data["c"] is not None


async def _search_result(services: ServicesDep, tenant: str, search_id: str) -> ResultSet:
    noted = await _noted(services, tenant, f"pangea.search:{search_id}")
    if noted is None:
        raise NotFoundError(f"no search results {search_id!r} for this tenant (or they expired)")
    return noted[0]


def _published_root(proofs: PangeaProofs, tenant: str, size: int) -> dict[str, Any]:
    reached = proofs.store.scan_evidence(tenant, size - 1, size)
    return {
        "tree_name": tree_name(tenant),
        "size": size,
        "root_hash": proofs.root(size).hex(),
        # When the tree reached this size: the receive time of its last event (now, if
        # retention pruned that event).
        "published_at": reached[0].event.received_at if reached else format_time(utcnow()),
    }


def _events_out(
    proofs: PangeaProofs, rs: ResultSet, found: list[StoredEvent]
) -> list[dict[str, Any]]:
    """Events with their hashes (Pangea's leaves) and, when verbose, proofs to the root:
    the published root for events it covers, else the unpublished root."""
    ids = [NodeID(0, e.seq) for e in found]
    leaves = proofs.store.read_nodes(rs.tenant_id, ids, tree="pangea") if found else []
    old = [e.seq for e in found if e.seq < rs.published]
    new = [e.seq for e in found if e.seq >= rs.published]
    proofs_by_seq: dict[int, str] = {}
    if rs.verbose:
        if old:
            proofs_by_seq |= proofs.memberships(old, rs.published)
        if new:
            proofs_by_seq |= proofs.memberships(new, rs.size)
    out = []
    for event, leaf in zip(found, leaves, strict=True):
        published = event.seq < rs.published
        item: dict[str, Any] = {
            "envelope": envelope(event.content, event.received_at),
            "hash": leaf.hex(),
            "published": published,
        }
        if published:
            item["leaf_index"] = event.seq
        if rs.verbose:
            item["membership_proof"] = proofs_by_seq[event.seq]
        out.append(item)
    return out


def _roots(proofs: PangeaProofs, rs: ResultSet) -> dict[str, Any]:
    """``count`` and, when verbose, the roots the membership proofs lead to."""
    result: dict[str, Any] = {"count": rs.count}
    if rs.verbose and rs.size > 0:
        result["root"] = (
            _published_root(proofs, rs.tenant_id, rs.published) if rs.published else None
        )
        result["unpublished_root"] = {
            "tree_name": tree_name(rs.tenant_id),
            "size": rs.size,
            "root_hash": proofs.root(rs.size).hex(),
        }
    return result


def _page_result(proofs: PangeaProofs, rs: ResultSet, found: list[StoredEvent]) -> dict[str, Any]:
    return _roots(proofs, rs) | {"events": _events_out(proofs, rs, found)}


async def _page(
    rs: ResultSet, limit: int, offset: int, events: EventService, services: ServicesDep
) -> dict[str, Any]:
    take = max(0, min(limit, rs.count - offset))
    found = await events.aselect(rs.tenant_id, _query(rs, take, offset)) if take else []
    proofs = PangeaProofs(services.store, rs.tenant_id)
    return await run_in_threadpool(_page_result, proofs, rs, found)


@router.post("/v1/search")
async def search(
    body: Body, tenant: ReadTenant, events: EventsDep, services: ServicesDep
) -> Response:
    """Search (Pangea's query syntax), freeze the result set, answer its first page."""
    limit = _int(body, "limit", DEFAULT_LIMIT, 1, MAX_RESULTS)
    spec = _spec(body, search=True, order="desc")
    max_results = _int(body, "max_results", MAX_RESULTS, 1, MAX_RESULTS)
    verbose = _flag(body, "verbose", True)
    rs = await _freeze(spec, tenant, services, verbose=verbose, ttl=RESULT_TTL)
    rs = await _counted(rs, events, max_results)
    search_id = new_id("pas_")
    await _put_result(services, f"pangea.search:{search_id}", rs, rs.count)
    page = await _page(rs, limit, 0, events, services)
    return answer({"id": search_id, "expires_at": rs.expires_at} | page)


@router.post("/v1/results")
async def results(
    body: Body, tenant: ReadTenant, events: EventsDep, services: ServicesDep
) -> Response:
    """A page of a frozen result set; an offset past its end is ``BadOffset``."""
    search_id = _optional_text(body, "id", "/id")
    if not search_id:
        raise FieldError("id is required", source="/id", pangea_code="FieldRequired")
    rs = await _search_result(services, tenant, search_id)
    if "assert_search_restriction" in body and body["assert_search_restriction"] != rs.restriction:
        raise FieldError(
            "the search used another search_restriction",
            source="/assert_search_restriction",
            pangea_code="InvalidValue",
        )
    limit = _int(body, "limit", DEFAULT_LIMIT, 1, MAX_RESULTS)
    offset = _int(body, "offset", 0, 0, 2**62)
    if offset > rs.count:
        raise BadOffsetError(f"offset {offset} is past the {rs.count} results")
    return answer(await _page(rs, limit, offset, events, services))


# -- roots ------------------------------------------------------------------------------------


def _root(proofs: PangeaProofs, tenant: str, size: int | None) -> dict[str, Any]:
    if size is None:
        size = proofs.size()
    data = _published_root(proofs, tenant, size)
    if size > 1:
        data["consistency_proof"] = proofs.consistency(size - 1, size)
    return data


@router.post("/v1/root")
async def root(body: Body, tenant: ReadTenant, services: ServicesDep) -> Response:
    """The root of the tree (``tree_size`` names a past size), ``{"data": {...}}``; a size the
    tree does not have is ``TreeNotFound``."""
    size = body.get("tree_size")
    if size is not None and type(size) is not int:
        raise FieldError(
            "tree_size must be a whole number", source="/tree_size", pangea_code="InvalidType"
        )
    proofs = PangeaProofs(services.store, tenant)
    return answer({"data": await run_in_threadpool(_root, proofs, tenant, size)})


# -- export and download ---------------------------------------------------------------------

#: Events a download reads per page.
_FILE_PAGE: Final = 500


def _format(body: dict[str, Any]) -> str:
    fmt = _optional_text(body, "format", "/format") or "csv"
    if fmt not in FORMATS:
        raise FieldError(
            f"format must be one of {', '.join(FORMATS)}",
            source="/format",
            pangea_code="InvalidValue",
        )
    return fmt


def _links(services: ServicesDep) -> DownloadLinks:
    return DownloadLinks(services.log.signer, services.exports.link_ttl)


@router.post("/v1/export")
async def export(
    request: Request, body: Body, principal: ReadPrincipal, services: ServicesDep
) -> Response:
    """Export the events of a time range (``start``, ``end``), in ``order``/``order_by``
    (default: log order, oldest first): 202 ``Accepted``; ``GET /request/{id}`` answers 202
    while the snapshot is taken, then ``{"count"}``, and ``download_results(request_id=...)``
    gives its file. Recorded in the tenant's log as ``export.create``."""
    tenant = principal.tenant_id
    assert tenant is not None
    fmt = _format(body)
    spec = _spec(body, search=False, order="asc")
    verbose = _flag(body, "verbose", True)
    request_id = new_id("prq_")
    rs = await _freeze(spec, tenant, services, verbose=verbose, ttl=REQUEST_TTL)
    await _put_result(services, f"pangea.export:{request_id}", rs, None)

    async def count() -> ResultSet:
        counted = await _counted(rs, services.events, None)
        await _put_result(services, f"pangea.export:{request_id}", counted, counted.count)
        metadata = {"dialect": "pangea", "format": fmt, "size": rs.size, "count": counted.count}
        metadata |= {k: v for k, v in spec.items() if v is not None}
        await run_in_threadpool(
            record_admin_event,
            services.store,
            tenant,
            "export.create",
            Actor.of(principal),
            {"id": request_id, "type": "export"},
            metadata,
        )
        return counted

    accepted = Accepted(tenant, asyncio.create_task(count()), Permission.READ)
    _state(request).requests.put(request_id, accepted)
    return _accepted(request, request_id)


async def _accepted_request(
    request: Request, services: ServicesDep, tenant: str, request_id: str
) -> Accepted | None:
    """This tenant's accepted request ``request_id``: a write or an export this process
    accepted, or an export another process did (a note), whose count this one takes if
    the note has none yet."""
    state = _state(request)
    accepted = state.requests.get(request_id)
    if accepted is None:
        noted = await _noted(services, tenant, f"pangea.export:{request_id}")
        if noted is None:
            return None
        rs, counted = noted
        if counted:
            outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            outcome.set_result(rs)
        else:
            outcome = asyncio.create_task(_counted(rs, services.events, None))
        accepted = Accepted(tenant, outcome, Permission.READ)
        state.requests.put(request_id, accepted)
    return accepted if accepted.tenant_id == tenant else None


async def _exported(
    request: Request, services: ServicesDep, tenant: str, request_id: str
) -> ResultSet:
    """The result set of this tenant's export ``request_id``, once it is counted."""
    accepted = await _accepted_request(request, services, tenant, request_id)
    if accepted is None or accepted.permission != Permission.READ:
        raise NotFoundError(f"no export {request_id!r} for this tenant (or it expired)")
    outcome = await asyncio.shield(accepted.task)
    assert isinstance(outcome, ResultSet)
    return outcome


@router.post("/v1/download_results")
async def download_results(
    request: Request, body: Body, tenant: ReadTenant, services: ServicesDep
) -> Response:
    """A capability URL (``dest_url``, valid until ``expires_at``) to the gzip file of a
    search's result set (``result_id``) or an export's (``request_id``), in ``format``."""
    fmt = _format(body)
    result_id = _optional_text(body, "result_id", "/result_id")
    request_id = _optional_text(body, "request_id", "/request_id")
    if bool(result_id) == bool(request_id):
        raise FieldError(
            "give either result_id (a search) or request_id (an export)",
            source="/result_id",
            pangea_code="FieldRequired" if not result_id else "InvalidValue",
        )
    if result_id:
        rs = await _search_result(services, tenant, result_id)
        if (
            "assert_search_restriction" in body
            and body["assert_search_restriction"] != rs.restriction
        ):
            raise FieldError(
                "the search used another search_restriction",
                source="/assert_search_restriction",
                pangea_code="InvalidValue",
            )
    else:
        assert request_id is not None
        rs = await _exported(request, services, tenant, request_id)
    job: dict[str, Any] = {
        "v": 1,
        "t": rs.tenant_id,
        "q": rs.spec,
        "n": rs.size,
        "p": rs.published,
        "c": rs.count,
        "b": rs.verbose,
        "f": fmt,
        "a": format_time(utcnow()),
    }
    link = _links(services).issue(job)
    name = filename(job["a"], fmt)
    url = request.url_for("pangea_download", job=link.job, name=name)
    dest = str(url.include_query_params(expires=link.expires, sig=link.sig))
    return answer({"dest_url": dest, "expires_at": link.expires_at})


def _walk(services: ServicesDep, rs: ResultSet) -> Iterator[list[StoredEvent]]:
    """The result set's events, page by page in its order: by ``seq`` from where the last
    page ended in log order, by offset when ordered by a field."""
    left = rs.count
    after: int | None = None
    while left > 0:
        take = min(_FILE_PAGE, left)
        if rs.order_by is not None:
            query = _query(rs, take, rs.count - left)
        elif rs.sort is Sort.ASC:
            query = replace(_query(rs, take, 0), after_seq=after)
        else:
            top = rs.size - 1 if after is None else after - 1
            query = replace(_query(rs, take, 0), max_seq=top)
        found = services.events.select(rs.tenant_id, query)
        if not found:
            return
        yield found
        left -= len(found)
        after = found[-1].seq


def _file(services: ServicesDep, rs: ResultSet, fmt: str) -> Iterator[bytes]:
    proofs = PangeaProofs(services.store, rs.tenant_id)
    pages = (_events_out(proofs, rs, found) for found in _walk(services, rs))
    return file_chunks(fmt, _roots(proofs, rs), pages)


@router.get("/download/{job}/{name}", name="pangea_download")
def download(
    job: str,
    name: str,
    services: ServicesDep,
    expires: Annotated[int, Query()],
    sig: Annotated[str, Query(max_length=64)],
) -> Response:
    """A ``dest_url``: the gzip file, without a token, while the link is valid (an altered
    or guessed link is ``Unauthorized``, as is an expired one)."""
    data = _links(services).open(job, expires, sig)
    fmt = data["f"]
    if name != filename(data["a"], fmt):
        raise NotFoundError(f"no file {name!r} at this link")
    rs = _result_set(
        data["t"],
        data["q"],
        size=data["n"],
        published=data["p"],
        count=data["c"],
        verbose=data["b"],
        expires_at=data["a"],
    )
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(
        _file(services, rs, fmt), media_type="application/gzip", headers=headers
    )


# -- the rest ---------------------------------------------------------------------------------


@router.api_route("/{path:path}", methods=["GET", "POST"], include_in_schema=False)
async def not_served(path: str) -> Response:
    """Any other path (``/v1/schema``, ``/v1beta/config/...``): ``NotFound`` in the envelope
    the SDK can read, rather than the native API's 404 shape, which it cannot."""
    raise NotFoundError(f"this server does not serve /{path} of Pangea's API")
