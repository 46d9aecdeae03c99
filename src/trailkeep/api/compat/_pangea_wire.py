"""Pangea's response envelope, its status strings, and failures worded as its SDK expects.

Every answer is exactly ``{request_id, request_time, response_time, status, summary, result}``
(``shared/compat/pangea.md`` §2.1): the SDK's model forbids any other key and needs ``result``
present. The ``status`` string, not the HTTP code, picks the SDK's exception (§2.2).
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Callable, Coroutine
from typing import Any, Final

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from trailkeep.errors import InvalidInputError, NotFoundError
from trailkeep.model.timeparse import format_time, utcnow
from trailkeep.service.pangea_tree import TreeSizeError

from ._common import Failure, classify, json_response

__all__ = [
    "BadOffsetError",
    "FieldError",
    "PangeaRoute",
    "answer",
    "new_id",
]

log = logging.getLogger(__name__)

_ALPHABET: Final = string.ascii_lowercase + string.digits
#: The status string for each HTTP status trailkeep fails with (§2.2); others are "Failed".
_STATUS: Final = {
    400: "ValidationError",
    401: "Unauthorized",
    403: "Unauthorized",
    404: "NotFound",
    409: "ValidationError",
    413: "ValidationError",
    422: "ValidationError",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceNotAvailable",
}


class BadOffsetError(InvalidInputError):
    """``/v1/results`` was asked for an offset past the result set (``BadOffset``)."""


class FieldError(InvalidInputError):
    """A request field is missing or wrong: a ``ValidationError`` naming its JSON pointer.

    Args:
        source: the field's JSON pointer, e.g. ``/event/message``.
        pangea_code: Pangea's code for the problem (``FieldRequired``, ``InvalidType``...).
    """

    def __init__(self, message: str, *, source: str, pangea_code: str) -> None:
        super().__init__(message)
        self.source = source
        self.pangea_code = pangea_code


def new_id(prefix: str) -> str:
    """A Pangea-style id: ``prefix`` + 32 characters of ``[a-z0-9]`` (``prq_``, ``pas_``)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(32))


def answer(
    result: Any,
    *,
    status: str = "Success",
    summary: str | None = None,
    http: int = 200,
    request_id: str | None = None,
) -> Response:
    """The envelope around ``result`` (which may be None), as JSON with ``x-request-id``."""
    now = format_time(utcnow())
    rid = request_id or new_id("prq_")
    body = {
        "request_id": rid,
        "request_time": now,
        "response_time": now,
        "status": status,
        "summary": summary or status,
        "result": result,
    }
    return json_response(body, http, {"x-request-id": rid})


def _failure(exc: Exception) -> Response:
    if isinstance(exc, TreeSizeError):
        return answer(None, status="TreeNotFound", summary=exc.message, http=404)
    if isinstance(exc, BadOffsetError):
        return answer(None, status="BadOffset", summary=exc.message, http=400)
    if isinstance(exc, FieldError):
        error = {"code": exc.pangea_code, "detail": exc.message, "source": exc.source}
        return answer({"errors": [error]}, status="ValidationError", summary=exc.message, http=400)
    if isinstance(exc, NotFoundError):
        return answer(None, status="NotFound", summary=exc.message, http=404)
    failure: Failure = classify(exc)
    status = _STATUS.get(failure.status, "Failed")
    result = None
    if status == "ValidationError":
        error = {"code": "InvalidRequest", "detail": failure.message, "source": "/"}
        result = {"errors": [error]}
    return answer(result, status=status, summary=failure.message, http=failure.status)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PangeaRoute(APIRoute):
    """A route that answers every failure in Pangea's envelope with its status string."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every failure, worded as Pangea's SDK expects
                return _failure(exc)

        return guarded
