"""The trailkeep Python SDK. Importable without any server dependency (no FastAPI, no drivers).

``Client`` (blocking) and ``AsyncClient`` (asyncio) have the same methods, written once in an
I/O-free core; ``BatchLogger`` / ``AsyncBatchLogger`` write in the background; every error is
an ``AuditError`` (the tree is drawn in ``trailkeep.client.errors``); ``trailkeep.client.verify``
checks proofs offline. See docs/sdk.md.
"""

from __future__ import annotations

from ._async import AsyncClient
from ._models import (
    Event,
    ExportInfo,
    Filters,
    Page,
    SignedCheckpoint,
    StreamCheckpoint,
    VerifiedEvent,
)
from ._sync import Client
from .batch import AsyncBatchLogger, BatchLogger
from .errors import (
    AuditError,
    AuthenticationError,
    BufferFullError,
    ConflictError,
    ConnectError,
    ForbiddenError,
    InconsistentLogError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    ValidationError,
    VerificationError,
)

__all__ = [
    "AsyncBatchLogger",
    "AsyncClient",
    "AuditError",
    "AuthenticationError",
    "BatchLogger",
    "BufferFullError",
    "Client",
    "ConflictError",
    "ConnectError",
    "Event",
    "ExportInfo",
    "Filters",
    "ForbiddenError",
    "InconsistentLogError",
    "InvalidArgumentError",
    "NotFoundError",
    "Page",
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "SignedCheckpoint",
    "StreamCheckpoint",
    "TransportError",
    "ValidationError",
    "VerificationError",
    "VerifiedEvent",
]
