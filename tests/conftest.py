"""Shared fixtures: a real SQLite file per test, the app in-process, keys for each role."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from trailkeep.api.app import create_app
from trailkeep.api.services import Services
from trailkeep.model.tenant import Role
from trailkeep.settings import Settings

os.environ.setdefault("AXONFLOW_TELEMETRY", "off")


@dataclass(frozen=True)
class Keys:
    """Tokens for one tenant, by role."""

    tenant: str
    writer: str
    reader: str
    admin: str

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database=f"sqlite:///{tmp_path / 'trailkeep.db'}",
        signing_key=tmp_path / "signing.key",
        server_name="test.trailkeep",
        sqlite_synchronous="NORMAL",
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = Services.build(settings)
    yield built
    built.close()


def make_keys(services: Services, tenant: str) -> Keys:
    services.tenants.create_tenant(tenant)
    tokens = {
        role: services.tenants.create_key(tenant, Role(role)).token
        for role in ("writer", "reader", "admin")
    }
    return Keys(tenant, **tokens)


@pytest.fixture
def acme(services: Services) -> Keys:
    return make_keys(services, "acme")


@pytest.fixture
def globex(services: Services) -> Keys:
    return make_keys(services, "globex")


@pytest.fixture
def operator_token(services: Services) -> str:
    return services.tenants.create_key(None, Role.OPERATOR).token


@pytest_asyncio.fixture
async def client(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://trailkeep.test") as c:
        yield c
