"""Tenant settings (``/v1/tenant``, admin) and tenant and key administration (operator)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from trailkeep.model.tenant import ApiKey, Role, Tenant

from ..deps import AdminTenant, Operator, TenantsDep
from ..schemas import ErrorOut, IssuedKeyOut, KeyIn, KeyOut, TenantIn, TenantOut, TenantSettingsIn
from .events import json_response

__all__ = ["router"]

router = APIRouter(tags=["tenants"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 422)
}


def _tenant(t: Tenant) -> dict[str, Any]:
    return {"id": t.id, "created_at": t.created_at, "settings": t.settings}


def _key(k: ApiKey) -> dict[str, Any]:
    return {
        "client_id": k.client_id,
        "tenant": k.tenant_id,
        "role": k.role.value,
        "name": k.name,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    }


@router.get("/v1/tenant", response_model=TenantOut, responses=_ERRORS)
def get_own_tenant(tenant: AdminTenant, tenants: TenantsDep) -> Response:
    """The calling tenant and its settings."""
    return json_response(_tenant(tenants.get_tenant(tenant)))


@router.put("/v1/tenant", response_model=TenantOut, responses=_ERRORS)
def put_own_tenant(body: TenantSettingsIn, tenant: AdminTenant, tenants: TenantsDep) -> Response:
    """Change the calling tenant's settings (only the fields sent)."""
    changed = body.model_dump(exclude_unset=True)
    return json_response(_tenant(tenants.update_settings(tenant, changed)))


@router.get("/v1/tenants", response_model=list[TenantOut], responses=_ERRORS)
def list_tenants(_: Operator, tenants: TenantsDep) -> Response:
    """Every tenant (operator keys only)."""
    return json_response([_tenant(t) for t in tenants.list_tenants()])


@router.post("/v1/tenants", status_code=201, response_model=TenantOut, responses=_ERRORS)
def create_tenant(body: TenantIn, _: Operator, tenants: TenantsDep) -> Response:
    """Create a tenant (operator keys only)."""
    return json_response(_tenant(tenants.create_tenant(body.name)), 201)


@router.get("/v1/tenants/{tenant_id}/keys", response_model=list[KeyOut], responses=_ERRORS)
def list_keys(tenant_id: str, _: Operator, tenants: TenantsDep) -> Response:
    """A tenant's keys, without secrets."""
    tenants.get_tenant(tenant_id)
    return json_response([_key(k) for k in tenants.list_keys(tenant_id)])


@router.post(
    "/v1/tenants/{tenant_id}/keys",
    status_code=201,
    response_model=IssuedKeyOut,
    responses=_ERRORS,
)
def create_key(tenant_id: str, body: KeyIn, _: Operator, tenants: TenantsDep) -> Response:
    """Issue a key for a tenant; its secret is shown in this response only."""
    issued = tenants.create_key(tenant_id, Role(body.role), body.name)
    return json_response(issued.to_json(), 201)


@router.delete("/v1/tenants/{tenant_id}/keys/{client_id}", status_code=204, responses=_ERRORS)
def revoke_key(tenant_id: str, client_id: str, _: Operator, tenants: TenantsDep) -> Response:
    """Revoke a key; requests with it fail within seconds."""
    tenants.revoke_key(client_id, tenant_id)
    return Response(status_code=204)
