"""Helpers for driving vendor clients against a real server: per-test tenants, seeding."""

from __future__ import annotations

import importlib
import itertools
import os
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.process import Server

_COUNTER = itertools.count()


def vendor(module: str) -> ModuleType:
    """Import a vendor client; skip without it locally, fail in CI (``CI=true``)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(
            f"{module} is not installed (pip install -e '.[compat]'): {exc}",
            allow_module_level=True,
        )


@dataclass(frozen=True)
class Key:
    client_id: str
    client_secret: str
    token: str


@dataclass(frozen=True)
class Tenant:
    """A fresh tenant on the module's server, with one key per role."""

    name: str
    url: str
    keys: dict[str, Key]

    def auth(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role].token}"}

    def seed(self, *events: dict[str, Any]) -> list[dict[str, Any]]:
        """Write events through the native API; returns them as stored."""
        resp = httpx.post(
            f"{self.url}/v1/events/batch",
            json={"events": list(events)},
            headers=self.auth("writer"),
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
        stored: list[dict[str, Any]] = resp.json()["events"]
        return stored

    def native(self, path: str = "/v1/events", **params: Any) -> Any:
        resp = httpx.get(f"{self.url}{path}", params=params, headers=self.auth("reader"))
        assert resp.status_code == 200, resp.text
        return resp.json()


def new_tenant(server: Server) -> Tenant:
    """Create a tenant and its keys, seeded in the server's database below the audited layer
    (as ``tests.process.provision`` does): a tenant made over the API would start its log with
    the server's ``key.create`` records, which every dialect lists like any event."""
    from trailkeep.model.tenant import Role
    from trailkeep.service.stores import open_store
    from trailkeep.service.tenants import TenantService

    name = f"t{next(_COUNTER)}-{uuid.uuid4().hex[:8]}"
    store = open_store(server.database)
    try:
        records = TenantService(store)
        records.create_tenant(name)
        keys = {}
        for role in ("writer", "reader", "admin"):
            issued = records.create_key(name, Role(role))
            keys[role] = Key(issued.key.client_id, issued.secret, issued.token)
    finally:
        store.close()
    return Tenant(name, server.url, keys)
