"""Per-client rate limiting: a token bucket per authenticated client id, else per peer address.

A request counts against a client id only once its credential has been verified (the secret
checked, as the route would; verified credentials are cached for a few seconds, so this is
usually a dictionary lookup). Anything else — no credential, a malformed one, an unknown or
revoked key, or a known client id with a wrong secret — counts against the peer address: a
client id is not a secret (readers see them), so claiming one must not spend its budget, or
anyone could lock a client out. Requests over the budget get 429 with ``Retry-After`` in the
native error shape before any routing or parsing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from trailkeep.service.auth import Authenticator

__all__ = ["RateLimitMiddleware", "TokenBuckets", "principal_key"]

#: Probes and scrapes must keep working while a client is throttled.
_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
#: Past this many buckets, full (idle) ones are dropped: they carry no state worth keeping.
_MAX_BUCKETS = 100_000

#: The bucket a request counts against: ``id:<client_id>`` or ``ip:<address>``.
KeyFunction = Callable[[Scope], Awaitable[str]]


def peer_key(scope: Scope) -> str:
    """The bucket of the connection's peer address (the proxy's, behind a proxy)."""
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def _authorization(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bytes(value).decode("latin-1")  # as Starlette hands it to the routes
    return None


def principal_key(auth: Authenticator) -> KeyFunction:
    """The bucket of the principal a request authenticates as, or of its peer address."""

    async def key(scope: Scope) -> str:
        header = _authorization(scope)
        if header:
            client_id = auth.cached_client_id(header)
            if client_id is None:  # a miss reads the key from the database: not on the loop
                client_id = await run_in_threadpool(auth.verified_client_id, header)
            if client_id is not None:
                return "id:" + client_id
        return peer_key(scope)

    return key


class TokenBuckets:
    """One bucket per key: ``burst`` tokens, refilled at ``rate`` per second.

    Single-threaded use only (the event loop), so there is no lock on the hot path.
    """

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"need rate > 0 and burst >= 1, got rate={rate} burst={burst}")
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, at)

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one token of ``key``; 0.0 if it had one, else the seconds until it will."""
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= _MAX_BUCKETS and key not in self._buckets:
                self._prune(now)
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = [
            k for k, (t, at) in self._buckets.items() if t + (now - at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= _MAX_BUCKETS:  # all busy: forgetting some is the lesser harm
            self._buckets.clear()


class RateLimitMiddleware:
    """Answer 429 (with ``Retry-After``) to a client over its budget; off when ``rate`` is 0.

    Args:
        rate: requests per second each client may sustain (0: no limit).
        burst: requests a client may make at once after being idle (0: one second's worth).
        key: which bucket a request counts against (:func:`principal_key`); by default the
            peer address alone.
    """

    def __init__(
        self, app: ASGIApp, rate: float, burst: int = 0, key: KeyFunction | None = None
    ) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst or max(1, math.ceil(rate))) if rate > 0 else None
        self.key = key or _peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http" or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(await self.key(scope))
        if wait == 0.0:
            await self.app(scope, receive, send)
            return
        await _reject(send, max(1, math.ceil(wait)))


async def _peer(scope: Scope) -> str:
    return peer_key(scope)


async def _reject(send: Send, retry_after: int) -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": "RATE_LIMITED",
                "message": f"too many requests for this client; retry in {retry_after} s",
            }
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
