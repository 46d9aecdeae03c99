"""Tenant settings (``/v1/tenant``, admin) and tenant and key administration (operator; an
admin key also manages its own tenant's keys). Every change is an audit event."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from trailkeep.model.tenant import (
    ApiKey,
    Permission,
    Principal,
    Role,
    Tenant,
    validate_tenant_id,
)
from trailkeep.service.admin import Administration, key_expiry
from trailkeep.service.admin_trail import Actor

from ..deps import AdminPrincipal, AuthHeader, Operator, ServicesDep, TenantsDep
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
        "expires_at": k.expires_at,
        "last_used_at": k.last_used_at,
    }


async def _admin(services: ServicesDep) -> Administration:
    return services.admin


AdminDep = Annotated[Administration, Depends(_admin)]


def _key_manager(tenant_id: str, services: ServicesDep, authorization: AuthHeader) -> Principal:
    """An operator key, or an admin key of ``tenant_id`` itself (403 for another tenant's).

    The name is checked as a whole first: the tenant header is read stripped, and a path
    of ``acme%0A`` must not act on ``acme``."""
    validate_tenant_id(tenant_id)
    return services.auth.authenticate(authorization, tenant_id, Permission.ADMIN)


KeyManager = Annotated[Principal, Depends(_key_manager)]


@router.get("/v1/tenant", response_model=TenantOut, responses=_ERRORS)
def get_own_tenant(principal: AdminPrincipal, tenants: TenantsDep) -> Response:
    """The calling tenant and its settings."""
    assert principal.tenant_id is not None
    return json_response(_tenant(tenants.get_tenant(principal.tenant_id)))


@router.put("/v1/tenant", response_model=TenantOut, responses=_ERRORS)
def put_own_tenant(body: TenantSettingsIn, principal: AdminPrincipal, admin: AdminDep) -> Response:
    """Change the calling tenant's settings (only the fields sent); each change is audited."""
    assert principal.tenant_id is not None
    changed = body.model_dump(exclude_unset=True)
    tenant = admin.update_settings(principal.tenant_id, changed, Actor.of(principal))
    return json_response(_tenant(tenant))


@router.get("/v1/tenants", response_model=list[TenantOut], responses=_ERRORS)
def list_tenants(_: Operator, tenants: TenantsDep) -> Response:
    """Every tenant (operator keys only)."""
    return json_response([_tenant(t) for t in tenants.list_tenants()])


@router.post("/v1/tenants", status_code=201, response_model=TenantOut, responses=_ERRORS)
def create_tenant(body: TenantIn, operator: Operator, admin: AdminDep) -> Response:
    """Create a tenant (operator keys only); recorded in the operator log."""
    return json_response(_tenant(admin.create_tenant(body.name, Actor.of(operator))), 201)


@router.get("/v1/tenants/{tenant_id}/keys", response_model=list[KeyOut], responses=_ERRORS)
def list_keys(tenant_id: str, _: KeyManager, tenants: TenantsDep) -> Response:
    """A tenant's keys, without secrets, with when each was last used."""
    tenants.get_tenant(tenant_id)
    return json_response([_key(k) for k in tenants.list_keys(tenant_id)])


@router.post(
    "/v1/tenants/{tenant_id}/keys",
    status_code=201,
    response_model=IssuedKeyOut,
    responses=_ERRORS,
)
def create_key(tenant_id: str, body: KeyIn, manager: KeyManager, admin: AdminDep) -> Response:
    """Issue a key for a tenant; its secret is shown in this response only."""
    expires_at = key_expiry(body.expires) if body.expires is not None else None
    issued = admin.create_key(
        tenant_id, Role(body.role), Actor.of(manager), name=body.name, expires_at=expires_at
    )
    return json_response(issued.to_json(), 201)


@router.delete("/v1/tenants/{tenant_id}/keys/{client_id}", status_code=204, responses=_ERRORS)
def revoke_key(tenant_id: str, client_id: str, manager: KeyManager, admin: AdminDep) -> Response:
    """Revoke a key; requests with it fail within seconds."""
    admin.revoke_key(client_id, tenant_id, Actor.of(manager))
    return Response(status_code=204)
