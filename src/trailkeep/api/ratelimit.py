"""Per-client rate limiting: a token bucket per credential's client id (or per IP without one).

The client id is read from the ``Authorization`` header without touching the database or
checking the secret: a forged client id only spends that id's budget, and the credential is
checked later as usual. Requests over the budget get 429 with ``Retry-After`` in the native
error shape before any routing, parsing or database work.
"""

from __future__ import annotations

import base64
import binascii
import math
import time

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RateLimitMiddleware", "TokenBuckets", "client_key"]

#: Probes and scrapes must keep working while a client is throttled.
_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
#: Past this many buckets, full (idle) ones are dropped: they carry no state worth keeping.
_MAX_BUCKETS = 100_000


def client_key(scope: Scope) -> str:
    """``id:<client_id>`` from a Bearer, UserKey or Basic credential, else ``ip:<address>``."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            client_id = _client_id(value)
            if client_id:
                return "id:" + client_id
            break
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def _client_id(header: bytes) -> str | None:
    scheme, _, value = header.strip().partition(b" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme in (b"bearer", b"userkey"):
        client_id, sep, _secret = value.partition(b".")
    elif scheme == b"basic":
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        client_id, sep, _secret = decoded.partition(b":")
    else:
        return None
    if not sep or not client_id or len(client_id) > 200:
        return None
    return client_id.decode("latin-1")


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
    """

    def __init__(self, app: ASGIApp, rate: float, burst: int = 0) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst or max(1, math.ceil(rate))) if rate > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http" or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(client_key(scope))
        if wait == 0.0:
            await self.app(scope, receive, send)
            return
        await _reject(send, max(1, math.ceil(wait)))


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
