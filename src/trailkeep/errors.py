"""The one exception tree of trailkeep; every layer raises from it, only the API maps it to HTTP.

    TrailkeepError
    ├── InvalidInputError          bad input the caller can fix (400)
    │   ├── TimeParseError         a time that is not in the accepted grammar
    │   └── InvalidCursorError     a cursor we did not issue, or one from another query
    ├── ValidationFailedError      well-formed input that breaks a rule of the model (422)
    ├── TooLargeError              an event or a batch over its limit (413)
    ├── AuthenticationError        no credential, or one we do not know (401)
    ├── PermissionDeniedError      a known credential without the right role or tenant (403)
    ├── NotFoundError              no such event, tenant, key or proof target (404)
    ├── ConflictError              a name already taken, a state that forbids the change (409)
    ├── UnavailableError           storage cannot serve now; safe to retry (503)
    │   └── QueryTimeoutError      a read ran past the per-query time limit (503)
    ├── IntegrityError             the data does not verify (tamper evidence)
    └── StorageError               a storage failure that is not the caller's fault (500)

The merkle package has its own verification errors (``trailkeep.merkle.errors``) that derive
from ``IntegrityError`` so that callers may catch either.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "IntegrityError",
    "InvalidCursorError",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "QueryTimeoutError",
    "StorageError",
    "TimeParseError",
    "TooLargeError",
    "TrailkeepError",
    "UnavailableError",
    "ValidationFailedError",
]


class TrailkeepError(Exception):
    """Root of every error trailkeep raises on purpose.

    Attributes:
        code: a stable, machine-readable code (``INVALID_REQUEST``, ``NOT_FOUND``...).
        message: a sentence for a person, naming the problem.
    """

    code = "INTERNAL"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInputError(TrailkeepError):
    code = "INVALID_REQUEST"


class TimeParseError(InvalidInputError):
    code = "INVALID_TIME"


class InvalidCursorError(InvalidInputError):
    code = "INVALID_CURSOR"


class ValidationFailedError(TrailkeepError):
    code = "VALIDATION_FAILED"


class TooLargeError(TrailkeepError):
    code = "TOO_LARGE"


class AuthenticationError(TrailkeepError):
    code = "UNAUTHENTICATED"


class PermissionDeniedError(TrailkeepError):
    code = "FORBIDDEN"


class NotFoundError(TrailkeepError):
    code = "NOT_FOUND"


class ConflictError(TrailkeepError):
    code = "CONFLICT"


class UnavailableError(TrailkeepError):
    code = "UNAVAILABLE"


class QueryTimeoutError(UnavailableError):
    """A read stopped at the per-query time limit (setting ``query_timeout``), so that one
    expensive query cannot hold a connection others need; narrow the query and retry."""

    code = "QUERY_TIMEOUT"


class IntegrityError(TrailkeepError):
    code = "INTEGRITY"


class StorageError(TrailkeepError):
    code = "STORAGE"
