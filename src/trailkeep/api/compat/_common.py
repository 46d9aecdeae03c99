"""What every vendor dialect shares: its own error mapper, credentials, time bounds, and typed
reads of an event's fields.

Each dialect answers failures in its vendor's error shape, so its routes use a route class
(:func:`dialect_route`) that catches every exception inside the route — credential checks and
request validation included — and hands a :class:`Failure` to the dialect's renderer. The app's
global handlers, and so the native API's error shape, never see these exceptions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from trailkeep import errors
from trailkeep.model.event import StoredEvent
from trailkeep.model.tenant import Permission, Principal
from trailkeep.model.timeparse import format_time, parse_time

from ..deps import AuthHeader, OrgHeader, ServicesDep
from ..errors import status_for, validation_message
from ..routes.events import event_content
from ..schemas import EventIn

__all__ = [
    "Failure",
    "WritePrincipal",
    "classify",
    "dialect_route",
    "first_text",
    "json_response",
    "lower_bound",
    "mapping_at",
    "metadata_of",
    "native_content",
    "org_of",
    "text_at",
    "timestamp_of",
    "upper_bound",
]

log = logging.getLogger(__name__)

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed request, before a dialect words it.

    Attributes:
        status: the HTTP status.
        code: trailkeep's code for it (``INVALID_REQUEST``, ``UNAUTHENTICATED``...).
        message: a sentence for a person.
        headers: headers the answer must carry (``WWW-Authenticate`` on a 401).
    """

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def classify(exc: Exception) -> Failure:
    """The failure an exception raised inside a dialect route stands for.

    Vendor clients send their parameters as they always have, so request validation is a
    plain 400 (not the native API's 422 for bodies).
    """
    if isinstance(exc, RequestValidationError):
        errs = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errs):
            return Failure(400, "INVALID_JSON", "request body is not valid JSON")
        return Failure(400, "INVALID_REQUEST", validation_message(errs))
    if isinstance(exc, errors.TrailkeepError):
        status = status_for(exc)
        if status == 500:
            log.error("internal error: %s", exc.message)
            return Failure(500, "INTERNAL", "internal error; see the server log")
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        return Failure(status, exc.code, exc.message, headers)
    if isinstance(exc, StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return Failure(exc.status_code, "ERROR", message, dict(exc.headers or {}))
    log.error("unhandled error in a dialect route", exc_info=exc)
    return Failure(500, "INTERNAL", "internal error; see the server log")


def dialect_route(render: Callable[[Failure], Response]) -> type[APIRoute]:
    """A route class whose routes answer every failure with ``render``.

    Args:
        render: words a failure in the vendor's error shape.
    """

    class DialectRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as exc:  # every failure, worded by the dialect
                    return render(classify(exc))

            return guarded

    return DialectRoute


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


# -- credentials ------------------------------------------------------------------------------


def _writer(services: ServicesDep, authorization: AuthHeader, org: OrgHeader = None) -> Principal:
    principal = services.auth.authenticate(authorization, org, Permission.WRITE)
    if principal.tenant_id is None:
        raise errors.InvalidInputError("operator keys must name a tenant with the X-Org-ID header")
    return principal


#: The key writing through a dialect (the dialect records its client id), with its tenant.
WritePrincipal = Annotated[Principal, Depends(_writer)]


# -- time bounds ------------------------------------------------------------------------------

_TICK = timedelta(microseconds=1)


def lower_bound(value: str | None, param: str, *, exclusive: bool = False) -> str | None:
    """An inclusive ``start`` for a vendor's lower time bound (``None``/empty: no bound).

    Stored timestamps have microsecond precision, so "strictly after t" is "from t + 1 µs".
    """
    parsed = parse_time(value, param=param) if value is not None else None
    if parsed is None:
        return None
    if exclusive:
        try:
            parsed += _TICK
        except OverflowError:  # nothing is after the last representable instant
            return format_time(parsed)
    return format_time(parsed)


def upper_bound(value: str | None, param: str, *, inclusive: bool = False) -> str | None:
    """An exclusive ``end`` for a vendor's upper time bound (``None``/empty: no bound).

    Stored timestamps have microsecond precision, so "up to and including t" is "before
    t + 1 µs".
    """
    parsed = parse_time(value, param=param) if value is not None else None
    if parsed is None:
        return None
    if inclusive:
        try:
            parsed += _TICK
        except OverflowError:  # everything is at or before the last representable instant
            return None
    return format_time(parsed)


# -- reading an event's fields ----------------------------------------------------------------


def text_at(content: dict[str, Any], *path: str) -> str | None:
    """The string at ``path`` in an event's content, or None when absent or not a string
    (an erased field reads as absent)."""
    value: Any = content
    for key in path:
        if type(value) is not dict:
            return None
        value = value.get(key)
    return value if type(value) is str else None


def mapping_at(content: dict[str, Any], *path: str) -> dict[str, Any] | None:
    """The object at ``path`` in an event's content, or None when absent or not an object."""
    value: Any = content
    for key in path:
        if type(value) is not dict:
            return None
        value = value.get(key)
    return value if type(value) is dict else None


def metadata_of(event: StoredEvent) -> dict[str, Any]:
    """The event's ``metadata`` object, empty when it has none (or it was erased)."""
    return mapping_at(event.content, "metadata") or {}


def first_text(*values: str | None) -> str | None:
    """The first value that is a non-empty string."""
    for value in values:
        if value:
            return value
    return None


def org_of(event: StoredEvent) -> str:
    """The organisation an event belongs to: ``metadata.org_id`` when the writer named one
    (Agilicus and Kubiya records carry it), else the tenant."""
    return text_at(event.content, "metadata", "org_id") or event.tenant_id


def timestamp_of(event: StoredEvent) -> str:
    """The event's fixed-width ``timestamp`` (its ``received_at`` if the field was erased)."""
    return text_at(event.content, "timestamp") or event.received_at


def native_content(content: dict[str, Any]) -> dict[str, Any]:
    """A dialect's translation of a write, checked by the native API's own schema (so a
    dialect can store nothing the native API would refuse), nulls removed."""
    try:
        event = EventIn.model_validate(content)
    except ValidationError as exc:
        raise errors.InvalidInputError(validation_message(exc.errors())) from None
    return event_content(event)
