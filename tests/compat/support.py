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
    """Create a tenant (through the native API, with the operator key) and its keys."""
    name = f"t{next(_COUNTER)}-{uuid.uuid4().hex[:8]}"
    operator = server.auth("operator")
    resp = httpx.post(f"{server.url}/v1/tenants", json={"name": name}, headers=operator)
    assert resp.status_code == 201, resp.text
    keys = {}
    for role in ("writer", "reader", "admin"):
        issued = httpx.post(
            f"{server.url}/v1/tenants/{name}/keys", json={"role": role}, headers=operator
        )
        assert issued.status_code == 201, issued.text
        body = issued.json()
        keys[role] = Key(body["client_id"], body["client_secret"], body["token"])
    return Tenant(name, server.url, keys)
