"""Tenants, API keys, roles and what each role may do."""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

from trailkeep.errors import ValidationFailedError

__all__ = [
    "ApiKey",
    "Permission",
    "Principal",
    "Role",
    "Tenant",
    "hash_secret",
    "secrets_match",
    "split_token",
    "validate_tenant_id",
]

_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class Permission(enum.Enum):
    """What a request needs; a role grants a set of these."""

    WRITE = "write"
    READ = "read"
    ADMIN = "admin"
    OPERATE = "operate"


class Role(enum.Enum):
    """A key's role (DESIGN §5). Operator keys belong to no tenant and may act in any."""

    WRITER = "writer"
    READER = "reader"
    ADMIN = "admin"
    OPERATOR = "operator"

    @property
    def permissions(self) -> frozenset[Permission]:
        return _GRANTS[self]


_GRANTS = {
    Role.WRITER: frozenset({Permission.WRITE}),
    Role.READER: frozenset({Permission.READ}),
    Role.ADMIN: frozenset({Permission.WRITE, Permission.READ, Permission.ADMIN}),
    Role.OPERATOR: frozenset(Permission),
}


def validate_tenant_id(tenant_id: str) -> str:
    """Check a tenant name: lower-case letters, digits, ``_`` and ``-``, 1 to 63 characters."""
    if not _TENANT_ID.match(tenant_id):
        raise ValidationFailedError(
            f"invalid tenant name {tenant_id!r}: use 1-63 lower-case letters, digits, '_' or '-',"
            " starting with a letter or digit"
        )
    return tenant_id


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    created_at: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: the secret is only ever kept as its SHA-256 hash."""

    client_id: str
    secret_hash: str
    tenant_id: str | None
    role: Role
    created_at: str
    name: str = ""
    revoked_at: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, after authentication: the key and the tenant the request acts in."""

    client_id: str
    role: Role
    tenant_id: str | None

    def can(self, permission: Permission) -> bool:
        return permission in self.role.permissions


def hash_secret(secret: str) -> str:
    """Hash a key secret for storage.

    Secrets are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_match(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def split_token(token: str) -> tuple[str, str]:
    """Split a bearer token ``<client_id>.<secret>`` into its two parts."""
    client_id, sep, secret = token.partition(".")
    if not sep or not client_id or not secret:
        raise ValueError("not a trailkeep token")
    return client_id, secret
