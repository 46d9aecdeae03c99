"""Shared fixtures: a real SQLite file (or PostgreSQL database) per test, the app in-process,
keys for each role."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from trailkeep.api.app import create_app
from trailkeep.api.services import Services
from trailkeep.model.tenant import Role
from trailkeep.settings import Settings

# In CI every property test draws the same examples on every run (derandomize): a red CI run
# is then reproducible, and never the luck of one draw. Locally each run explores new examples.
# Nor is it the machine's load: no deadline per example, no health check on generation speed.
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    print_blob=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

if TYPE_CHECKING:
    from tests.pg import PostgresServer

os.environ.setdefault("AXONFLOW_TELEMETRY", "off")

#: Test directories whose ``settings`` and ``services`` run on every backend. They reach the
#: database only through the service layer (``tests/service`` edits SQLite files directly).
ALL_BACKENDS_UNDER = ("api",)
ALL_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        where = metafunc.definition.path.relative_to(Path(__file__).parent).parts[0]
        if where in ALL_BACKENDS_UNDER:
            metafunc.parametrize("backend", ALL_BACKENDS)


@dataclass(frozen=True)
class Keys:
    """Tokens for one tenant, by role."""

    tenant: str
    writer: str
    reader: str
    admin: str

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session; skipped when missing, except in CI."""
    try:
        from tests.pg import PostgresServer

        server = PostgresServer.start_new()
    except (ImportError, RuntimeError) as exc:  # no psycopg; PostgresUnavailable
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests, but: {exc}")
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    yield server
    server.destroy()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """The URL of a new, empty database (a fresh schema) on the session's PostgreSQL server."""
    return pg_server.create_schema()


@pytest.fixture
def backend() -> str:
    """The backend ``settings`` uses: SQLite, unless the test's directory runs on all of them."""
    return "sqlite"


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    if backend == "sqlite":
        database = f"sqlite:///{tmp_path / 'trailkeep.db'}"
    else:
        database = request.getfixturevalue("pg_url")
    return Settings(
        database=database,
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
