"""The ingest routes' bodies, decoded and validated in one pass, with pydantic as the referee.

``POST /v1/events`` and ``/v1/events/batch`` carry most of the server's bytes. FastAPI's way
(stdlib ``json`` → pydantic ``validate_python`` → ``model_dump``) builds every event three
times; here msgspec decodes the body straight into typed structs that mirror
:class:`~trailkeep.api.schemas.EventIn` field for field (strict: no coercion, unknown fields
refused, the same length bounds) and turns them into the contents the service takes.

msgspec only ever says yes to a body the pydantic models also accept, with the same result
(``tests/api/test_ingest_body.py`` proves it); whenever it says no, the body goes through
:func:`~trailkeep.api.body.validate_body` and the pydantic models, which either accept it
(msgspec is stricter in a few corners: a UTF-8 byte-order mark, ``NaN``, non-UTF-8 text) or
raise the ``RequestValidationError`` whose message clients and tests already know. So error
answers never change, and the OpenAPI schema stays the pydantic models'.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from .body import OFFLOAD_BYTES, validate_body
from .schemas import BatchIn, EventIn

__all__ = ["STRUCTS", "event_content", "event_contents"]

_Short = Annotated[str, msgspec.Meta(max_length=512)]
_Long = Annotated[str, msgspec.Meta(max_length=4096)]
#: The sub-objects whose own nulls are dropped, as the top level's are (each of their fields
#: is committed on its own, DESIGN §3).
_OBJECTS = ("actor", "target", "source", "metadata")


class _Struct(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Unknown fields refused; ``omit_defaults``: a null (every default) is left out.

    Subclasses with a required field after optional ones say ``kw_only=True``, so the order of
    the fields (and of the contents' keys) stays the models'.
    """


class _Actor(_Struct):
    id: _Short | None = None
    type: _Short | None = None
    name: _Short | None = None
    email: _Short | None = None
    role: _Short | None = None


class _Target(_Struct):
    id: _Short | None = None
    type: _Short | None = None
    name: _Short | None = None
    org_id: _Short | None = None


class _Source(_Struct):
    ip: _Short | None = None
    user_agent: _Long | None = None
    client_id: _Short | None = None
    service: _Short | None = None


class _Signature(_Struct, kw_only=True):
    alg: Literal["ed25519"]
    public_key: Annotated[str, msgspec.Meta(max_length=128)]
    sig: Annotated[str, msgspec.Meta(max_length=256)]


class _Event(_Struct, kw_only=True):
    timestamp: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    action: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    category: _Short | None = None
    outcome: Literal["success", "failure", "unknown"] | None = None
    actor: _Actor | None = None
    target: _Target | None = None
    source: _Source | None = None
    session_id: _Short | None = None
    request_id: _Short | None = None
    trace_id: _Short | None = None
    message: str | None = None
    old: Any = None
    new: Any = None
    metadata: dict[str, Any] | None = None
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    signature: _Signature | None = None


class _Batch(_Struct, kw_only=True):
    events: list[_Event]


class _RawBatch(_Struct, kw_only=True):
    """A batch whose events are only checked to be JSON (each decoded on its own after)."""

    events: list[msgspec.Raw]


#: The pydantic model each struct mirrors (a test holds their fields and bounds equal).
STRUCTS: dict[type[msgspec.Struct], type[Any]] = {_Event: EventIn, _Batch: BatchIn}

_EVENT = msgspec.json.Decoder(_Event)
_BATCH = msgspec.json.Decoder(_Batch)
_RAW_BATCH = msgspec.json.Decoder(_RawBatch)


def _drop_metadata_nulls(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nulls inside ``metadata`` dropped too, as :func:`event_content` drops them (the other
    sub-objects are structs, whose nulls ``omit_defaults`` already left out)."""
    for content in contents:
        metadata = content.get("metadata")
        if metadata is not None and None in metadata.values():
            content["metadata"] = {k: v for k, v in metadata.items() if v is not None}
    return contents


def event_content(event: EventIn) -> dict[str, Any]:
    """A pydantic-validated event as a content: nulls removed at the committed levels."""
    content = {k: v for k, v in event.model_dump().items() if v is not None}
    for name in _OBJECTS:
        if name in content:
            content[name] = {k: v for k, v in content[name].items() if v is not None}
    return content


def _fast(body: bytes, *, batch: bool) -> list[dict[str, Any]] | None:
    """The contents, or ``None`` when msgspec refuses the body (the referee decides)."""
    try:
        if not batch:
            decoded = [msgspec.to_builtins(_EVENT.decode(body))]
        elif len(body) <= OFFLOAD_BYTES:
            # One ``to_builtins`` of the whole body: a call per event costs twice as much.
            decoded = msgspec.to_builtins(_BATCH.decode(body))["events"]
        else:
            # Large bodies are decoded on a worker thread, but a C call holds the GIL to the
            # end: one for a full 8 MiB batch would stall the event loop for 0.1-0.3 s. A
            # scan that only slices the events out, then one short call per event, lets the
            # loop run between them.
            raw = _RAW_BATCH.decode(body).events
            decoded = [msgspec.to_builtins(_EVENT.decode(event)) for event in raw]
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return _drop_metadata_nulls(decoded)


def event_contents(body: bytes, *, batch: bool) -> list[dict[str, Any]]:
    """The events of a ``POST /v1/events`` (one) or ``/v1/events/batch`` body, as contents.

    Raises:
        RequestValidationError: not JSON, or not an ``EventIn`` / ``BatchIn`` (the pydantic
            models' own errors, located as FastAPI locates them).
    """
    fast = _fast(body, batch=batch)
    if fast is not None:
        return fast
    if batch:
        return [event_content(e) for e in validate_body(body, BatchIn).events]
    return [event_content(validate_body(body, EventIn))]
