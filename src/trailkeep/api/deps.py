"""Route dependencies as ``Annotated`` aliases, so route signatures read as sentences."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from trailkeep.errors import InvalidInputError
from trailkeep.model.tenant import Permission, Principal
from trailkeep.service.events import EventService
from trailkeep.service.log import LogService
from trailkeep.service.tenants import TenantService

from .services import Services

__all__ = [
    "AdminPrincipal",
    "AdminTenant",
    "AuthHeader",
    "EventsDep",
    "LogDep",
    "Operator",
    "OrgHeader",
    "ReadPrincipal",
    "ReadTenant",
    "ServicesDep",
    "TenantsDep",
    "WriteTenant",
]

# Declared as a security scheme so /docs offers an "Authorize" button; parsing is ours.
_authorization = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    description="`Bearer <token>`, `UserKey <token>` or `Basic base64(client_id:secret)`.",
)


async def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]


async def _events(services: ServicesDep) -> EventService:
    return services.events


async def _tenants(services: ServicesDep) -> TenantService:
    return services.tenants


async def _log(services: ServicesDep) -> LogService:
    return services.log


EventsDep = Annotated[EventService, Depends(_events)]
LogDep = Annotated[LogService, Depends(_log)]
TenantsDep = Annotated[TenantService, Depends(_tenants)]
OrgHeader = Annotated[
    str | None,
    Header(alias="X-Org-ID", description="Tenant to act in (operator keys); must match others."),
]
AuthHeader = Annotated[str | None, Depends(_authorization)]


def _principal_for(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    # Async so that a cached credential costs no threadpool hop; misses go to a thread.
    async def dependency(
        services: ServicesDep, authorization: AuthHeader, org: OrgHeader = None
    ) -> Principal:
        principal = services.auth.authenticate_cached(authorization, org, permission)
        if principal is None:
            principal = await run_in_threadpool(
                services.auth.authenticate, authorization, org, permission
            )
        if principal.tenant_id is None:
            raise InvalidInputError("operator keys must name a tenant with the X-Org-ID header")
        return principal

    return dependency


def _tenant_of(
    principal_dependency: Callable[..., Awaitable[Principal]],
) -> Callable[..., Awaitable[str]]:
    # A default, not an Annotated hint: string annotations cannot see this closure's variable.
    async def dependency(principal: Principal = Depends(principal_dependency)) -> str:
        assert principal.tenant_id is not None
        return principal.tenant_id

    return dependency


def _operator(services: ServicesDep, authorization: AuthHeader) -> Principal:
    return services.auth.authenticate(authorization, None, Permission.OPERATE)


_writer = _principal_for(Permission.WRITE)
_reader = _principal_for(Permission.READ)
_admin = _principal_for(Permission.ADMIN)

#: The tenant a request acts in, from a credential allowed to write / read / administer it.
WriteTenant = Annotated[str, Depends(_tenant_of(_writer))]
ReadTenant = Annotated[str, Depends(_tenant_of(_reader))]
AdminTenant = Annotated[str, Depends(_tenant_of(_admin))]
#: The same, when the route also needs to know which key is acting (to log it).
AdminPrincipal = Annotated[Principal, Depends(_admin)]
ReadPrincipal = Annotated[Principal, Depends(_reader)]
Operator = Annotated[Principal, Depends(_operator)]
