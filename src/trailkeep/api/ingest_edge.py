"""The ingest routes' common case answered without FastAPI's routing and dependency solving.

For a small ``POST /v1/events``, FastAPI's route matching, dependency solving and header
validation cost the event loop more than the event itself: measured in-process with 32
requests in flight, about 1.25 ms of event-loop CPU per request through the routes, 0.5 ms
through this edge (docs/architecture.md, "How a write becomes durable"). :class:`IngestEdge` is the
innermost middleware: when a request is the common case — the exact path, a credential the
auth cache already vouches for, a JSON ``Content-Type``, an ``Idempotency-Key`` within its
bound, a body that decodes — it calls the same functions the routes call
(:func:`~trailkeep.api.routes.events.record`). Whenever any of that is not
so, the request goes on to the routes unchanged (its body replayed), so every error answer,
and everything the OpenAPI schema says, stays the routes' own.

The middlewares around it (metrics, rate limit, body limit) see both paths alike; the route
is put in the scope, so the request is labelled with its template.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trailkeep.errors import TrailkeepError
from trailkeep.model.tenant import Permission

from .body import off_loop_if_large
from .errors import trailkeep_error_response
from .ingest_body import event_contents
from .metrics import Metrics
from .routes import events as routes
from .services import Services

__all__ = ["IngestEdge"]

#: The request headers the ingest routes read, by their lowercase ASCII names.
_WANTED: Final = frozenset(
    (b"authorization", b"x-org-id", b"idempotency-key", b"prefer", b"content-type")
)
#: The ``Idempotency-Key`` header's bound (the routes' ``IdempotencyHeader``).
_MAX_KEY: Final = 200
#: The two routes by path: each with whether it takes a batch.
_ROUTES: Final[dict[str, tuple[APIRoute, bool]]] = {
    route.path: (route, route.endpoint is routes.create_events)
    for route in routes.router.routes
    if isinstance(route, APIRoute) and route.endpoint in (routes.create_event, routes.create_events)
}


class IngestEdge:
    """Answer the ingest routes' common case here; send everything else on (module doc)."""

    def __init__(self, app: ASGIApp, services: Services, metrics: Metrics) -> None:
        self.app = app
        self._services = services
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and scope["method"] == "POST":
            found = _ROUTES.get(scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        route, batch = found
        headers = _headers(scope)
        tenant = self._tenant(headers)
        key = headers.get(b"idempotency-key")
        if (
            tenant is None
            or (key is not None and len(key) > _MAX_KEY)
            or "json" not in headers.get(b"content-type", "").lower()
        ):
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        if body is None:  # the client went away
            return
        try:
            decode = partial(event_contents, batch=batch)
            contents = await off_loop_if_large(len(body), decode, body)
        except RequestValidationError:  # the route's own error answer, from the same bytes
            await self.app(scope, _replay(body, receive), send)
            return
        scope["route"] = route
        try:
            response = await routes.record(
                self._metrics,
                self._services.events,
                tenant,
                contents,
                len(body),
                key,
                headers.get(b"prefer"),
                batch=batch,
            )
        except TrailkeepError as exc:
            response = trailkeep_error_response(exc)
        await response(scope, receive, send)

    def _tenant(self, headers: dict[bytes, str]) -> str | None:
        """The tenant a cached write credential acts in; None for anything the routes'
        dependencies must look at (a cache miss, an operator, an error to answer)."""
        try:
            principal = self._services.auth.authenticate_cached(
                headers.get(b"authorization"), headers.get(b"x-org-id"), Permission.WRITE
            )
        except TrailkeepError:
            return None
        if principal is None:
            return None
        tenant: str | None = principal.tenant_id
        return tenant


def _headers(scope: Scope) -> dict[bytes, str]:
    """The wanted headers, first occurrence of each (as Starlette's ``Headers.get``)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _WANTED and name not in found:
            found[name] = value.decode("latin-1")
    return found


async def _read(receive: Receive) -> bytes | None:
    """The whole body; None when the client disconnects first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over ``body`` once, then whatever the client sends next."""
    pending: list[Any] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            message: Message = pending.pop()
            return message
        return await receive()

    return replayed
