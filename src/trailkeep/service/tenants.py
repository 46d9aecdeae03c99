"""Tenant and key records: the plain operations under ``service.admin.Administration``.

Nothing here writes an audit event: the API and the CLI act through ``Administration``,
which records each act; these are also what test fixtures use to seed a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trailkeep.errors import NotFoundError, ValidationFailedError
from trailkeep.model.ids import new_client_id, new_secret
from trailkeep.model.tenant import (
    OPERATOR_LOG,
    ApiKey,
    Role,
    Tenant,
    hash_secret,
    validate_key_name,
    validate_tenant_id,
)
from trailkeep.model.timeparse import format_time, utcnow
from trailkeep.storage.base import Store

__all__ = ["IssuedKey", "TenantService"]


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key as shown once to its owner; only ``secret``'s hash is stored."""

    key: ApiKey
    secret: str

    @property
    def token(self) -> str:
        return f"{self.key.client_id}.{self.secret}"

    def to_json(self) -> dict[str, Any]:
        """DESIGN §8's fields, and ``expires_at`` for a key that expires."""
        out = {
            "client_id": self.key.client_id,
            "client_secret": self.secret,
            "token": self.token,
            "tenant": self.key.tenant_id,
            "role": self.key.role.value,
        }
        if self.key.expires_at is not None:
            out["expires_at"] = self.key.expires_at
        return out


class TenantService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def create_tenant(self, name: str) -> Tenant:
        tenant = Tenant(validate_tenant_id(name), format_time(utcnow()), {})
        self._store.create_tenant(tenant)
        return tenant

    def get_tenant(self, tenant_id: str) -> Tenant:
        tenant = self._store.get_tenant(tenant_id)
        if tenant is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return tenant

    def list_tenants(self) -> list[Tenant]:
        """Every tenant but the reserved operator log (no tenant of anyone's)."""
        return [t for t in self._store.list_tenants() if t.id != OPERATOR_LOG]

    def update_settings(self, tenant_id: str, settings: dict[str, Any]) -> Tenant:
        current = self.get_tenant(tenant_id)
        return self._store.update_tenant_settings(tenant_id, {**current.settings, **settings})

    def create_key(
        self, tenant_id: str | None, role: Role, name: str = "", *, expires_at: str | None = None
    ) -> IssuedKey:
        """Issue a key: operator keys have no tenant, every other role needs one.

        Raises:
            ValidationFailedError: the tenant or key name breaks its rule (checked before
                anything is looked up, so a malformed name reads as malformed, not missing).
        """
        validate_key_name(name)
        if tenant_id is not None:
            validate_tenant_id(tenant_id)
        if role is Role.OPERATOR and tenant_id is not None:
            raise ValidationFailedError("operator keys belong to no tenant; omit the tenant")
        if role is not Role.OPERATOR:
            if tenant_id is None:
                raise ValidationFailedError(f"a {role.value} key needs a tenant")
            self.get_tenant(tenant_id)
        secret = new_secret()
        key = ApiKey(
            new_client_id(),
            hash_secret(secret),
            tenant_id,
            role,
            format_time(utcnow()),
            name,
            expires_at=expires_at,
        )
        self._store.create_key(key)
        return IssuedKey(key, secret)

    def list_keys(self, tenant_id: str | None) -> list[ApiKey]:
        return self._store.list_keys(tenant_id)

    def revoke_key(self, client_id: str, tenant_id: str | None) -> ApiKey:
        """Revoke a key of ``tenant_id`` (None: an operator key); returns it as it was."""
        key = self._store.get_key(client_id)
        if key is None or key.tenant_id != tenant_id:
            raise NotFoundError(f"no key {client_id!r} in this tenant")
        self._store.revoke_key(client_id, format_time(utcnow()))
        return key
