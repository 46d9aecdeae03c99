"""Pruning now, by the tenant's retention policy: ``POST /v1/tenant/prune`` (admin)."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ..deps import AdminPrincipal, ServicesDep
from ..schemas import ErrorOut
from .events import json_response

__all__ = ["router"]

router = APIRouter(tags=["tenants"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 422, 503)
}


class PruneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(
        default=None,
        ge=1,
        le=100_000_000,
        description="Most events this run prunes (default: every expired one). The answer's"
        " `done` is false when expired events are left; call again to go on.",
    )


class PruneOut(BaseModel):
    pruned: int = Field(description="Events pruned by this run.")
    first_seq: int | None = Field(description="Lowest seq pruned (null if none).")
    last_seq: int | None = Field(description="Highest seq pruned (null if none).")
    cutoff: str = Field(description="Events with a timestamp before this were expired.")
    retention_days: int
    done: bool = Field(description="False when the run stopped at `limit` with more to prune.")


@router.post("/v1/tenant/prune", response_model=PruneOut, responses=_ERRORS)
async def prune_now(
    principal: AdminPrincipal, services: ServicesDep, body: PruneIn | None = None
) -> Response:
    """Prune the tenant's expired events now, by its `retention_days` (409 under a legal hold
    or with no policy). Content goes, id, seq and leaf stay; the run is logged as a
    `retention.prune` event."""
    assert principal.tenant_id is not None
    run = await anyio.to_thread.run_sync(
        partial(
            services.retention.prune_tenant,
            principal.tenant_id,
            actor=principal,
            limit=None if body is None else body.limit,
        )
    )
    return json_response(run.to_json())
