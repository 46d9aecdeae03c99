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
    "KEY_NAME_RULE",
    "OPERATOR_LOG",
    "TENANT_NAME_RULE",
    "ApiKey",
    "Permission",
    "Principal",
    "Role",
    "Tenant",
    "hash_secret",
    "secrets_match",
    "split_token",
    "validate_key_name",
    "validate_tenant_id",
]

#: Checked with ``fullmatch``: ``$`` alone would let a trailing newline through, and a tenant
#: named ``"abc\n"`` can never be signed (a checkpoint origin is one line).
_TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
TENANT_NAME_RULE = "1-63 lower-case letters, digits, '_' or '-', starting with a letter or digit"
#: A key's label is free text, but one line of printable text: it is shown in tables and logs.
_KEY_NAME = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]{0,200}")
KEY_NAME_RULE = "at most 200 characters, no control characters or line breaks"
#: The reserved log of operator acts that concern no tenant yet (creating a tenant, issuing
#: an operator key). Its leading ``_`` breaks the tenant name rule, so nobody can create a
#: tenant of that name, issue a key for it, or write to it: only the server appends to it.
OPERATOR_LOG = "_operator"


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
    """Check a tenant name, as a whole: lower-case letters, digits, ``_`` and ``-``, 1 to 63.

    The name becomes part of every checkpoint origin, so anything that could break a signed
    note's line structure must be refused before the tenant exists.
    """
    if _TENANT_ID.fullmatch(tenant_id) is None:
        raise ValidationFailedError(f"invalid tenant name {tenant_id!r}: use {TENANT_NAME_RULE}")
    return tenant_id


def validate_key_name(name: str) -> str:
    """Check a key's label, as a whole: one line of printable text, at most 200 characters."""
    if _KEY_NAME.fullmatch(name) is None:
        raise ValidationFailedError(f"invalid key name {name!r}: use {KEY_NAME_RULE}")
    return name


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
    #: After this time (fixed-width RFC 3339) the key no longer authenticates; None: never.
    expires_at: str | None = None
    #: When the key last authenticated a request, to within a minute (written at most once
    #: a minute per key and process, never on every request); None: never used.
    last_used_at: str | None = None

    def expired(self, now: str) -> bool:
        """Whether the key has expired at ``now`` (fixed-width timestamps compare as text)."""
        return self.expires_at is not None and self.expires_at <= now


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
