"""The live stream ``GET /v1/stream``: Server-Sent Events of a tenant's log as it grows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query
from starlette.responses import StreamingResponse

from trailkeep.errors import InvalidInputError
from trailkeep.service.stream import Heartbeat, StreamCheckpoint, StreamItem, StreamService

from ..deps import ReadTenant, ServicesDep
from ..params import KNOWN_PARAMS_ONLY, SelectionDep, with_query
from ..schemas import ErrorOut
from .events import SearchParam

__all__ = ["router", "sse_message"]

router = APIRouter(tags=["stream"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 503)
}
_SSE = {"content": {"text/event-stream": {"schema": {"type": "string"}}}}
#: How long an EventSource waits before reconnecting (the SSE ``retry:`` field), in ms.
RECONNECT_MS = 1000


def _streams(services: ServicesDep) -> StreamService:
    return services.streams


StreamsDep = Annotated[StreamService, Depends(_streams)]


def sse_message(item: StreamItem) -> bytes:
    """One SSE message: ``id`` is the subscriber's log position, to resume from."""
    if isinstance(item, Heartbeat):
        return b": keepalive\n\n"
    if isinstance(item, StreamCheckpoint):
        data = {"size": item.checkpoint.size, "checkpoint": item.checkpoint.note}
        kind, position = b"checkpoint", item.position
    else:
        data, kind, position = item.event.to_wire(), b"event", item.event.seq
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (position, kind, orjson.dumps(data))


def _position(last_event_id: str | None, after_seq: int | None) -> int | None:
    if last_event_id is not None and last_event_id.strip():
        text = last_event_id.strip()
        if not text.lstrip("-").isdigit() or not -1 <= int(text) < 2**63:
            raise InvalidInputError(
                f"Last-Event-ID {last_event_id[:40]!r} is not a log position (an integer >= -1)"
            )
        return int(text)
    return after_seq


@router.get(
    "/v1/stream",
    response_class=StreamingResponse,
    responses={**_ERRORS, 200: _SSE},
    dependencies=[KNOWN_PARAMS_ONLY],
)
def stream(
    tenant: ReadTenant,
    streams: StreamsDep,
    where: SelectionDep,
    q: SearchParam = None,
    after_seq: Annotated[
        int | None,
        Query(
            ge=-1,
            le=2**63 - 1,
            description="Deliver events after this seq (-1: from the start). Default: from now.",
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=32,
            description="Resume after this position; wins over `after_seq`.",
        ),
    ] = None,
) -> StreamingResponse:
    """Events as they are written, in log order, as Server-Sent Events (`event: event`, `id:`
    its seq), with `event: checkpoint` messages once every earlier matching event was sent,
    and `: keepalive` comments when idle. Reconnect with `Last-Event-ID` to miss nothing."""
    where = with_query(where, q)
    position = _position(last_event_id, after_seq)
    if position is None:
        position = streams.current_position(tenant)
    items = streams.items(tenant, where, position, streams.compile(where))

    async def body() -> AsyncIterator[bytes]:
        # The reconnection delay, and the starting position as an id: a client that drops
        # before the first event still resumes from here, not from "now" again.
        yield b"retry: %d\nid: %d\n: stream of %s\n\n" % (RECONNECT_MS, position, tenant.encode())
        try:
            async for item in items:
                yield sse_message(item)
        finally:
            await items.aclose()  # the client left: stop reading at once

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
