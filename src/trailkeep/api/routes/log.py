"""The verifiable log: checkpoints, proofs, leaves, the public key, and event receipts."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import PlainTextResponse, Response

from trailkeep.merkle import format_tlog_proof
from trailkeep.model.evidence import encode_redacted, encode_salts
from trailkeep.storage.base import PrunedEvent

from ..deps import AdminPrincipal, LogDep, ReadTenant, ServicesDep
from ..schemas import ErrorOut, EventOut
from .events import json_response

__all__ = ["router"]

router = APIRouter(tags=["log"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 422)
}
_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}
Size = Annotated[int, Query(ge=0, le=2**63 - 1)]


def _b64(values: list[bytes]) -> list[str]:
    return [base64.b64encode(v).decode() for v in values]


class EventProofOut(BaseModel):
    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(description="base64")
    hashes: list[str] = Field(description="RFC 9162 inclusion proof, base64, lowest level first")
    checkpoint: str = Field(description="The signed checkpoint note the proof leads to.")
    event: EventOut
    salts: dict[str, str] = Field(description="Field path → base64 salt (not for erased fields).")
    redacted: dict[str, str] = Field(description="Erased field path → its commitment, hex.")


class InclusionOut(BaseModel):
    leaf_index: int
    tree_size: int
    hashes: list[str]


class ConsistencyOut(BaseModel):
    first: int = Field(alias="from")
    second: int = Field(alias="to")
    hashes: list[str]


class LeafOut(BaseModel):
    index: int
    hash: str


class LeavesOut(BaseModel):
    leaves: list[LeafOut]


class RedactIn(BaseModel):
    fields: list[str] = Field(min_length=1, max_length=100, description="Field paths to erase.")
    reason: str = Field(default="", max_length=1000)


@router.get(
    "/v1/events/{event_id}/proof",
    response_model=EventProofOut,
    responses={**_ERRORS, 200: _TEXT},
)
def event_proof(
    request: Request, event_id: str, tenant: ReadTenant, log: LogDep, size: Size | None = None
) -> Response:
    """Inclusion proof of an event to the latest (or the `size`) checkpoint, with what
    recomputes its leaf. `Accept: text/plain` answers with the C2SP tlog-proof receipt."""
    proof = log.event_proof(tenant, event_id, size)
    if "text/plain" in request.headers.get("accept", ""):
        receipt = format_tlog_proof(proof.seq, proof.hashes, proof.checkpoint.note)
        return PlainTextResponse(receipt)
    found = proof.evidence
    if isinstance(found, PrunedEvent):  # the leaf and its path; no content is left
        leaf, event = found.leaf_hash, found.to_wire()
        salts: dict[str, str] = {}
        redacted: dict[str, str] = {}
    else:
        leaf, event = found.event.leaf_hash, found.event.to_wire()
        salts, redacted = encode_salts(found.salts), encode_redacted(found.redacted)
    assert leaf is not None
    return json_response(
        {
            "leaf_index": proof.seq,
            "tree_size": proof.checkpoint.size,
            "leaf_hash": base64.b64encode(leaf).decode(),
            "hashes": _b64(proof.hashes),
            "checkpoint": proof.checkpoint.note,
            "event": event,
            "salts": salts,
            "redacted": redacted,
        }
    )


@router.post("/v1/events/{event_id}/redact", response_model=EventOut, responses=_ERRORS)
async def redact_event(
    event_id: str, body: RedactIn, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    """Erase fields (value and salt) of an event; proofs still verify. The erasure is itself
    logged as an `event.redact` event."""
    assert principal.tenant_id is not None
    event = await services.redaction.redact(
        principal.tenant_id, event_id, body.fields, principal.client_id, body.reason
    )
    return json_response(event.to_wire())


@router.get("/v1/log/checkpoint", response_class=PlainTextResponse, responses=_ERRORS)
def checkpoint(tenant: ReadTenant, log: LogDep) -> PlainTextResponse:
    """The tenant's latest signed checkpoint (a C2SP signed note)."""
    return PlainTextResponse(log.latest_checkpoint(tenant).note)


@router.get("/v1/log/proof/inclusion", response_model=InclusionOut, responses=_ERRORS)
def inclusion_proof(tenant: ReadTenant, log: LogDep, index: Size, size: Size) -> Response:
    """RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves."""
    hashes = log.inclusion_proof(tenant, index, size)
    return json_response({"leaf_index": index, "tree_size": size, "hashes": _b64(hashes)})


@router.get("/v1/log/proof/consistency", response_model=ConsistencyOut, responses=_ERRORS)
def consistency_proof(
    tenant: ReadTenant,
    log: LogDep,
    first: Annotated[int, Query(alias="from", ge=0, le=2**63 - 1)],
    second: Annotated[int, Query(alias="to", ge=0, le=2**63 - 1)],
) -> Response:
    """RFC 9162 consistency proof between the trees of `from` and `to` leaves."""
    hashes = log.consistency_proof(tenant, first, second)
    return json_response({"from": first, "to": second, "hashes": _b64(hashes)})


@router.get("/v1/log/leaves", response_model=LeavesOut, responses=_ERRORS)
def leaves(tenant: ReadTenant, log: LogDep, start: Size, end: Size) -> Response:
    """Leaf hashes of `[start, end)` (at most 1,000), base64, for monitors."""
    hashes = log.leaves(tenant, start, end)
    return json_response(
        {"leaves": [{"index": start + i, "hash": h} for i, h in enumerate(_b64(hashes))]}
    )


@router.get("/v1/log/key", response_class=PlainTextResponse)
def public_key(log: LogDep) -> PlainTextResponse:
    """The checkpoint verifier key (C2SP note verifier string) to pin. Public."""
    return PlainTextResponse(log.signer.verifier().key_string() + "\n")
