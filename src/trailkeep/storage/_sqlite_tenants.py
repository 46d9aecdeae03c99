"""SQLite's tenants, API keys and dialect notes (a mixin of ``SQLiteStore``): administration
transactions."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from trailkeep.errors import (
    ConflictError,
    NotFoundError,
)
from trailkeep.model.tenant import ApiKey, Role, Tenant
from trailkeep.model.timeparse import format_time, utcnow

__all__ = ["SQLiteTenants"]

log = logging.getLogger("trailkeep.storage.sqlite")
T = TypeVar("T")


class SQLiteTenants:
    """``Store``'s tenants and keys: reads in a snapshot, writes in ``_admin_tx``."""

    if TYPE_CHECKING:

        def _read(self, fn: Callable[[sqlite3.Connection], T], *, timed: bool = False) -> T: ...

        def _admin_tx(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def create_tenant(self, tenant: Tenant) -> None:
        try:
            with self._admin_tx() as conn:
                conn.execute(
                    "INSERT INTO tenants (id, created_at, settings) VALUES (?, ?, ?)",
                    (tenant.id, tenant.created_at, orjson.dumps(tenant.settings).decode()),
                )
                conn.execute(
                    "INSERT INTO tree_heads (tenant_id, size, frontier) VALUES (?, 0, x'')",
                    (tenant.id,),
                )
        except ConflictError:
            raise ConflictError(f"tenant {tenant.id!r} already exists") from None

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = self._read(
            lambda c: c.execute(
                "SELECT id, created_at, settings FROM tenants WHERE id = ?", (tenant_id,)
            ).fetchone()
        )
        return None if row is None else Tenant(row[0], row[1], orjson.loads(row[2]))

    def list_tenants(self) -> list[Tenant]:
        rows = self._read(
            lambda c: c.execute(
                "SELECT id, created_at, settings FROM tenants ORDER BY id"
            ).fetchall()
        )
        return [Tenant(r[0], r[1], orjson.loads(r[2])) for r in rows]

    def update_tenant_settings(self, tenant_id: str, settings: dict[str, Any]) -> Tenant:
        with self._admin_tx() as conn:
            cur = conn.execute(
                "UPDATE tenants SET settings = ? WHERE id = ?",
                (orjson.dumps(settings).decode(), tenant_id),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no tenant {tenant_id!r}")
        tenant = self.get_tenant(tenant_id)
        assert tenant is not None
        return tenant

    def create_key(self, key: ApiKey) -> None:
        with self._admin_tx() as conn:
            conn.execute(
                "INSERT INTO api_keys (client_id, secret_hash, tenant_id, role, name, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key.client_id,
                    key.secret_hash,
                    key.tenant_id,
                    key.role.value,
                    key.name,
                    key.created_at,
                    key.expires_at,
                ),
            )

    _KEY_FIELDS = (
        "client_id, secret_hash, tenant_id, role, created_at, name, revoked_at, expires_at,"
        " last_used_at"
    )

    @staticmethod
    def _key(row: tuple[Any, ...]) -> ApiKey:
        return ApiKey(row[0], row[1], row[2], Role(row[3]), *row[4:9])

    def get_key(self, client_id: str) -> ApiKey | None:
        row = self._read(
            lambda c: c.execute(
                f"SELECT {self._KEY_FIELDS} FROM api_keys WHERE client_id = ?",  # noqa: S608
                (client_id,),
            ).fetchone()
        )
        return None if row is None else self._key(row)

    def list_keys(self, tenant_id: str | None) -> list[ApiKey]:
        sql = f"SELECT {self._KEY_FIELDS} FROM api_keys WHERE tenant_id IS ? ORDER BY created_at"  # noqa: S608
        rows = self._read(lambda c: c.execute(sql, (tenant_id,)).fetchall())
        return [self._key(r) for r in rows]

    def revoke_key(self, client_id: str, revoked_at: str) -> None:
        with self._admin_tx() as conn:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL",
                (revoked_at, client_id),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no active key {client_id!r}")

    def touch_keys(self, used: dict[str, str]) -> None:
        with self._admin_tx() as conn:
            conn.executemany(
                "UPDATE api_keys SET last_used_at = ? WHERE client_id = ?"
                " AND (last_used_at IS NULL OR last_used_at < ?)",
                [(at, client_id, at) for client_id, at in used.items()],
            )

    def put_note(self, tenant_id: str, key: str, value: bytes, expires_at: str) -> None:
        with self._admin_tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO dialect_notes (tenant_id, key, value, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (tenant_id, key, value, expires_at),
            )
            conn.execute("DELETE FROM dialect_notes WHERE expires_at < ?", (format_time(utcnow()),))

    def get_note(self, tenant_id: str, key: str, now: str) -> bytes | None:
        row = self._read(
            lambda conn: conn.execute(
                "SELECT value FROM dialect_notes WHERE tenant_id = ? AND key = ?"
                " AND expires_at > ?",
                (tenant_id, key, now),
            ).fetchone()
        )
        return None if row is None else bytes(row[0])
