"""Wire schemas of the native API: pydantic models used only at the HTTP edge.

Unknown fields are refused (422 naming them) at the top level and inside ``actor``,
``target`` and ``source``: a typo must not silently drop data from an audit record.
Anything that has no field of its own belongs in ``metadata``, which takes any JSON.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool, StrictInt

__all__ = [
    "Actor",
    "BatchIn",
    "BatchOut",
    "BatchRefOut",
    "ErrorBody",
    "ErrorOut",
    "EventIn",
    "EventOut",
    "EventPage",
    "EventRef",
    "FacetsOut",
    "IssuedKeyOut",
    "KeyIn",
    "KeyOut",
    "Signature",
    "Source",
    "Target",
    "TenantIn",
    "TenantOut",
    "TenantSettingsIn",
]

Str = Field(default=None, max_length=4096)
Short = Field(default=None, max_length=512)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Actor(_Strict):
    id: str | None = Short
    type: str | None = Short
    name: str | None = Short
    email: str | None = Short
    role: str | None = Short


class Target(_Strict):
    id: str | None = Short
    type: str | None = Short
    name: str | None = Short
    org_id: str | None = Short


class Source(_Strict):
    ip: str | None = Short
    user_agent: str | None = Str
    client_id: str | None = Short
    service: str | None = Short


class Signature(_Strict):
    """A client's Ed25519 signature over the event's canonical content."""

    alg: Literal["ed25519"]
    public_key: str = Field(max_length=128, description="base64 raw 32-byte public key")
    sig: str = Field(max_length=256, description="base64 64-byte signature")


class EventIn(_Strict):
    """An audit event as a client sends it (DESIGN §2)."""

    timestamp: str | None = Field(
        default=None,
        max_length=64,
        description="When it happened; RFC 3339 or any form of DESIGN §6. Default: received_at.",
    )
    action: str = Field(min_length=1, max_length=512, description="What was done.")
    category: str | None = Short
    outcome: Literal["success", "failure", "unknown"] | None = None
    actor: Actor | None = None
    target: Target | None = None
    source: Source | None = None
    session_id: str | None = Short
    request_id: str | None = Short
    trace_id: str | None = Short
    message: str | None = None
    old: JsonValue = None
    new: JsonValue = None
    metadata: dict[str, JsonValue] | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)
    signature: Signature | None = None


class BatchIn(_Strict):
    events: list[EventIn] = Field(description="Up to 1,000 events, written all or nothing.")


class EventOut(BaseModel):
    """A stored event: the client's fields plus what the server assigned."""

    id: str
    tenant_id: str
    seq: int
    received_at: str
    timestamp: str
    action: str
    category: str | None = None
    outcome: Literal["success", "failure", "unknown"]
    actor: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    source: dict[str, Any] | None = None
    session_id: str | None = None
    request_id: str | None = None
    trace_id: str | None = None
    message: str | None = None
    old: JsonValue = None
    new: JsonValue = None
    metadata: dict[str, JsonValue] | None = None
    idempotency_key: str | None = None
    signature: dict[str, Any] | None = None
    hash: str | None = Field(default=None, description="Merkle leaf hash, hex.")


class BatchOut(BaseModel):
    events: list[EventOut]


class EventRef(BaseModel):
    """Where a stored event landed: the answer to `Prefer: return=minimal`."""

    id: str
    seq: int
    hash: str | None = Field(description="Merkle leaf hash, hex.")
    received_at: str


class BatchRefOut(BaseModel):
    events: list[EventRef]


class EventPage(BaseModel):
    events: list[EventOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


#: Longer than any valid name: the schema only bounds the input, and the model's own check
#: (``validate_tenant_id``, ``validate_key_name``) answers with the whole rule.
_NAME_INPUT = 1024


class TenantIn(_Strict):
    name: str = Field(
        max_length=_NAME_INPUT,
        description="1-63 lower-case letters, digits, '_' or '-', starting with a letter or"
        " digit (checked as a whole).",
        examples=["acme"],
    )


class TenantSettingsIn(_Strict):
    """Only the fields sent change; each change is an audit event (docs/api.md)."""

    retention_days: StrictInt | None = Field(
        default=None, ge=1, le=36500, description="Days events are kept; null: forever."
    )
    retention: str | None = Field(
        default=None,
        max_length=32,
        description="A preset instead of retention_days: community or 7d (7 days),"
        " professional or 30d, enterprise or 365d (AxonFlow's tiers), forever.",
    )
    legal_hold: StrictBool | None = Field(
        default=None, description="true suspends pruning of the whole tenant."
    )
    display_name: str | None = Field(default=None, max_length=200)


class TenantOut(BaseModel):
    id: str
    created_at: str
    settings: dict[str, Any]


class KeyIn(_Strict):
    role: Literal["writer", "reader", "admin"]
    name: str = Field(
        default="",
        max_length=_NAME_INPUT,
        description="A label: at most 200 characters, no control characters or line breaks.",
    )
    expires: str | None = Field(
        default=None,
        max_length=64,
        description="When the key stops working: a duration from now (30d, 12h) or a time"
        " (2027-01-01); omitted: never.",
    )


class KeyOut(BaseModel):
    client_id: str
    tenant: str | None
    role: str
    name: str
    created_at: str
    revoked_at: str | None
    expires_at: str | None
    last_used_at: str | None = Field(
        description="When the key last authenticated a request (to within a minute)."
    )


class IssuedKeyOut(BaseModel):
    client_id: str
    client_secret: str
    token: str
    tenant: str | None
    role: str
    expires_at: str | None = Field(default=None, description="Only for a key that expires.")


class FacetValue(BaseModel):
    value: str
    count: int


class HistogramBucket(BaseModel):
    start: str = Field(description="Timestamp prefix naming the bucket (e.g. 2026-11-23T10).")
    count: int


class Histogram(BaseModel):
    bucket: Literal["minute", "hour", "day", "month"]
    buckets: list[HistogramBucket]


class FacetsOut(BaseModel):
    total: int
    facets: dict[str, list[FacetValue]]
    histogram: Histogram
