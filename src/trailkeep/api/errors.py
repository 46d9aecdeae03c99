"""The native API's one error mapper: every failure becomes ``{"error": {code, message}}``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from trailkeep import errors

__all__ = [
    "document_media_type_error",
    "error_response",
    "install_error_handlers",
    "trailkeep_error_response",
    "validation_message",
]

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[errors.TrailkeepError], int]] = [
    (errors.InvalidInputError, 400),
    (errors.AuthenticationError, 401),
    (errors.PermissionDeniedError, 403),
    (errors.NotFoundError, 404),
    (errors.ConflictError, 409),
    (errors.TooLargeError, 413),
    (errors.ValidationFailedError, 422),
    (errors.UnavailableError, 503),
]
_HTTP_CODES = {
    400: "INVALID_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    503: "UNAVAILABLE",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def status_for(exc: errors.TrailkeepError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _loc(loc: Sequence[Any]) -> str:
    """``("body", "events", 3, "action")`` → ``events[3].action``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("body", "query", "path", "header"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def validation_message(errs: Sequence[Any]) -> str:
    parts = []
    for err in errs[:10]:
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (put extra data in metadata)"
        parts.append(f"{_loc(err.get('loc', ()))}: {msg}")
    more = f" (and {len(errs) - 10} more)" if len(errs) > 10 else ""
    return "; ".join(parts) + more


def _whole_body_hint(request: Request, errs: Sequence[Any]) -> Response | None:
    """Say what to send when the body as a whole has the wrong type: the usual causes are a
    missing ``Content-Type: application/json`` and an array posted where one object goes."""
    whole = [e for e in errs if tuple(e.get("loc", ())) == ("body",)]
    if not whole:
        return None
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type.lower():
        got = f"Content-Type {content_type}" if content_type else "no Content-Type header"
        return error_response(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"send the body as JSON with the header 'Content-Type: application/json' (got {got})",
        )
    if not isinstance(whole[0].get("input"), list):
        return None
    if request.url.path.rstrip("/").endswith("/v1/events"):
        fix = (
            "one event is a JSON object; to send several,"
            ' POST {"events": [...]} to /v1/events/batch'
        )
    else:
        fix = 'the body is a JSON object, not an array (a batch is {"events": [...]})'
    return error_response(422, "VALIDATION_FAILED", f"body: {fix}")


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errs = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errs):
        return error_response(400, "INVALID_JSON", "request body is not valid JSON")
    hint = _whole_body_hint(request, errs)
    if hint is not None:
        return hint
    in_body = all(e.get("loc", ("",))[0] == "body" for e in errs)
    if in_body:
        return error_response(422, "VALIDATION_FAILED", validation_message(errs))
    return error_response(400, "INVALID_REQUEST", validation_message(errs))


async def _on_trailkeep(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.TrailkeepError)
    return trailkeep_error_response(exc)


def trailkeep_error_response(exc: errors.TrailkeepError) -> Response:
    """The answer to a ``TrailkeepError``: its status, code and message (500s logged)."""
    status = status_for(exc)
    if status == 500:
        log.error("internal error: %s", exc.message)
        return error_response(500, "INTERNAL", "internal error; see the server log")
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, exc.code, exc.message, headers)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "ERROR")
    message = exc.detail if isinstance(exc.detail, str) else code.lower()
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.method} {request.url.path}"
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "INTERNAL", "internal error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(errors.TrailkeepError, _on_trailkeep)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)


def document_media_type_error(app: FastAPI) -> None:
    """Declare in the OpenAPI schema the 415 that ``_whole_body_hint`` answers for a native
    route's body sent without a JSON ``Content-Type`` (schema-driven clients and fuzzers
    check every status against it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        error = {"$ref": "#/components/schemas/ErrorOut"}
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue  # the dialects answer in their vendors' own shapes
            for operation in operations.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    operation.setdefault("responses", {}).setdefault("415", {
                        "description": "Body not sent as Content-Type: application/json",
                        "content": {"application/json": {"schema": error}},
                    })  # fmt: skip
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
