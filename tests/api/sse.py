"""Reading a live stream from the app in-process: ``httpx.ASGITransport`` waits for a response
to end, which a stream never does, so this drives the ASGI app directly and disconnects when
the test has seen enough."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import FastAPI

from trailkeep.client._sse import SSEDecoder, SSEMessage


@dataclass
class Received:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    messages: list[SSEMessage] = field(default_factory=list)
    finished: bool = False

    def of(self, kind: str) -> list[SSEMessage]:
        return [m for m in self.messages if m.event == kind]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(m.data) for m in self.of("event")]

    @property
    def seqs(self) -> list[int]:
        return [e["seq"] for e in self.events]

    @property
    def keepalives(self) -> int:
        return sum(1 for m in self.messages if m.comment == "keepalive")


Until = Callable[[Received], bool]


async def read_stream(
    app: FastAPI,
    headers: dict[str, str],
    params: list[tuple[str, str]] | None = None,
    *,
    until: Until,
    during: Callable[[], Any] | None = None,
    timeout: float = 5.0,
) -> Received:
    """GET /v1/stream until ``until(received)`` holds (then disconnect) or the app answers
    and ends (an error). ``during`` runs once the response has started (to publish)."""
    received = Received()
    decoder = SSEDecoder()
    started = asyncio.Event()
    done = asyncio.Event()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/stream",
        "raw_path": b"/v1/stream",
        "query_string": urlencode(params or []).encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("trailkeep.test", 80),
    }
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            received.status = message["status"]
            received.headers = {k.decode(): v.decode() for k, v in message["headers"]}
            started.set()
            return
        chunk = message.get("body", b"")
        received.body += chunk
        if received.status == 200:
            for line in chunk.decode().splitlines():
                parsed = decoder.feed(line)
                if parsed is not None:
                    received.messages.append(parsed)
        if until(received) or not message.get("more_body", False):
            done.set()

    app_task = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(started.wait(), timeout)
    if during is not None:
        await during()
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        done.set()
        await asyncio.wait_for(app_task, timeout)  # the disconnect must end the stream
        received.finished = True
    return received
