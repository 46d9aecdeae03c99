"""The SDK's exceptions: one tree, so ``except AuditError`` catches everything the SDK raises.

    AuditError                      code, message, status (None when no HTTP answer)
    ├── AuthenticationError         401: no token, or one the server does not know
    ├── ForbiddenError              403: the key's role or tenant does not allow it
    ├── NotFoundError               404: no such event or export (or another tenant's)
    ├── ConflictError               409: e.g. NOT_YET_CHECKPOINTED (retry in a second)
    ├── ValidationError             400, 413, 422: the request is wrong; do not retry as is
    │   └── InvalidArgumentError    caught before sending (e.g. an event with no action);
    │                               also a ValueError, for code that caught that before
    ├── RateLimitError              429: retry after ``retry_after`` seconds
    ├── ServerError                 5xx: the server failed (503: safe to retry)
    ├── TransportError              no HTTP answer at all
    │   ├── ConnectError            the server cannot be reached
    │   └── RequestTimeoutError     it did not answer in time
    ├── VerificationError           a proof, signature or checkpoint does not verify
    │   └── InconsistentLogError    the server showed a checkpoint inconsistent with one seen
    └── BufferFullError             a BatchLogger's buffer is full

``AuditError`` (the name Kubiya's SDK uses) derives from ``trailkeep.errors.TrailkeepError``,
the root of every trailkeep exception. Driver errors (httpx) never escape the SDK: they are
mapped here, at the boundary, and chained as ``__cause__``.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import orjson

from trailkeep.errors import IntegrityError, TrailkeepError

__all__ = [
    "AuditError",
    "AuthenticationError",
    "BufferFullError",
    "ConflictError",
    "ConnectError",
    "ForbiddenError",
    "InconsistentLogError",
    "InvalidArgumentError",
    "NotFoundError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "TransportError",
    "ValidationError",
    "VerificationError",
    "error_from_response",
    "error_from_transport",
]


class AuditError(TrailkeepError):
    """Root of the SDK's errors.

    Attributes:
        code: the server's machine-readable code (``NOT_FOUND``...), or the SDK's own.
        message: the server's sentence, or the SDK's.
        status: the HTTP status, or None when there was no HTTP answer.
    """

    code = "AUDIT_ERROR"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message, code=code)
        self.status = status

    def __str__(self) -> str:
        where = f"{self.status} " if self.status is not None else ""
        return f"{where}{self.code}: {self.message}"


class AuthenticationError(AuditError):
    code = "UNAUTHENTICATED"


class ForbiddenError(AuditError):
    code = "FORBIDDEN"


class NotFoundError(AuditError):
    code = "NOT_FOUND"


class ConflictError(AuditError):
    code = "CONFLICT"


class ValidationError(AuditError):
    code = "INVALID_REQUEST"


class InvalidArgumentError(ValidationError, ValueError):
    """A call the SDK refuses before sending anything: no HTTP status."""

    code = "INVALID_ARGUMENT"


class RateLimitError(AuditError):
    """Attributes: retry_after: seconds the server asked us to wait, if it said."""

    code = "RATE_LIMITED"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class ServerError(AuditError):
    code = "SERVER_ERROR"


class TransportError(AuditError):
    code = "TRANSPORT"


class ConnectError(TransportError):
    code = "CONNECT"


class RequestTimeoutError(TransportError):
    code = "TIMEOUT"


class VerificationError(AuditError):
    """A proof that does not verify; ``__cause__`` is the ``IntegrityError`` naming why."""

    code = "VERIFICATION_FAILED"

    @classmethod
    def wrap(cls, exc: IntegrityError) -> VerificationError:
        error = cls(exc.message, code=exc.code)
        error.__cause__ = exc
        return error


class InconsistentLogError(VerificationError):
    """The log was rewritten or rolled back: a checkpoint does not extend the pinned one."""

    code = "INCONSISTENT_LOG"


class BufferFullError(AuditError):
    code = "BUFFER_FULL"


_BY_STATUS: dict[int, type[AuditError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: ValidationError,
    422: ValidationError,
    429: RateLimitError,
}


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _code_and_message(response: httpx.Response) -> tuple[str, str]:
    try:
        body: Any = orjson.loads(response.content)
        error = body["error"]
        return str(error["code"]), str(error["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        text = response.text.strip()[:300] or response.reason_phrase
        return f"HTTP_{response.status_code}", text


def error_from_response(response: httpx.Response) -> AuditError:
    """The exception for a non-2xx answer, carrying the server's code and message."""
    status = response.status_code
    code, message = _code_and_message(response)
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else AuditError)
    if cls is RateLimitError:
        retry_after = _retry_after(response.headers.get("retry-after"))
        return RateLimitError(message, code=code, status=status, retry_after=retry_after)
    return cls(message, code=code, status=status)


def error_from_transport(exc: httpx.TransportError, url: str) -> TransportError:
    """The exception for a request that got no answer, naming the server."""
    if isinstance(exc, httpx.TimeoutException):
        error: TransportError = RequestTimeoutError(
            f"{url} did not answer in time ({type(exc).__name__})"
        )
    elif isinstance(exc, httpx.ConnectError):
        error = ConnectError(f"cannot reach {url}: {exc}")
    else:
        error = TransportError(f"talking to {url} failed: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error
