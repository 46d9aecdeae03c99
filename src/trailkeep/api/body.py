"""JSON request bodies read by the route itself, so that a large one is parsed off the loop.

FastAPI parses and validates a declared body on the event loop before the route runs; for a
full 8 MiB batch that is seconds of CPU during which no other request (health checks included)
is answered. Routes that accept large bodies read the raw bytes instead and hand them to
:func:`off_loop_if_large`; validation matches FastAPI's, errors included (``RequestValidationError``
with the same locations, mapped by ``api/errors.py``), and :func:`document_bodies` keeps the
OpenAPI description as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from trailkeep.service.events import one_at_a_time

__all__ = [
    "OFFLOAD_BYTES",
    "body_schema",
    "document_bodies",
    "json_body",
    "off_loop_if_large",
    "validate_body",
]

#: Bodies (and responses) larger than this are handled on a worker thread.
OFFLOAD_BYTES = 256 * 1024
_REF = "#/components/schemas/{model}"

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


async def off_loop_if_large(size: int, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``: on a worker thread when ``size`` bytes are involved, else right here.

    On the worker thread it runs under ``HEAVY_WORK``, one such step at a time.
    """
    if size > OFFLOAD_BYTES:
        return await run_in_threadpool(one_at_a_time, fn, *args)
    return fn(*args)


def _let_others_run(obj: dict[str, Any]) -> dict[str, Any]:
    """The identity, as ``json.loads``' object hook: a Python call per JSON object.

    ``json.loads`` is one C call that holds the GIL until the whole document is parsed (0.4 s
    or more for a full batch), so parsing on a worker thread alone would still stall the
    event loop. The interpreter may hand the GIL over at each Python call, so with this hook
    the loop waits at most for one object's parse. The result is the same.
    """
    return obj


def _invalid_json(position: int) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "json_invalid", "loc": ("body", position), "msg": "JSON decode error"}]
    )


async def json_body(request: Request) -> bytes:
    """The raw body of a request that must be JSON.

    A body sent without a JSON ``Content-Type`` is refused as FastAPI refuses it for a
    declared body (a validation error of the body as a whole), which ``api/errors.py`` answers
    with a 415 naming the header.
    """
    body = await request.body()
    if "json" not in request.headers.get("content-type", "").lower():
        wrong = {"type": "model_attributes_type", "loc": ("body",), "msg": "not JSON"}
        raise RequestValidationError([{**wrong, "input": body[:100]}])
    return body


def validate_body(body: bytes, model: type[M]) -> M:
    """``body`` parsed as JSON and validated as ``model``, as FastAPI does for a declared body.

    Raises:
        RequestValidationError: empty (422 ``Field required``), not JSON (400), or JSON that
            breaks the schema (422, each error located as FastAPI locates it).
    """
    if not body:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    try:
        data = json.loads(body, object_hook=_let_others_run)
    except json.JSONDecodeError as exc:
        raise _invalid_json(exc.pos) from None
    except (ValueError, RecursionError):  # not UTF-8/16/32 text; nested beyond the stack
        raise _invalid_json(0) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A route's ``openapi_extra`` describing a required JSON body of ``model``."""
    schema = {"$ref": _REF.format(model=model.__name__)}
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


def document_bodies(app: FastAPI, *models: type[BaseModel]) -> None:
    """Add ``models`` (and the models they use) to the app's OpenAPI components.

    FastAPI registers the models of declared bodies only; these bodies are read by hand.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:  # built, and completed, by the first call
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            full = model.model_json_schema(ref_template=_REF)
            for name, part in full.pop("$defs", {}).items():
                components.setdefault(name, part)
            components.setdefault(model.__name__, full)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
