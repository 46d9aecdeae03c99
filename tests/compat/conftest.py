"""One real server process per test module; a fresh tenant per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compat.support import Tenant, new_tenant
from tests.process import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("server")
    with running_server(workdir, env={"AXONFLOW_TELEMETRY": "off"}) as running:
        yield running


@pytest.fixture
def tenant(server: Server) -> Tenant:
    return new_tenant(server)


@pytest.fixture
def other_tenant(server: Server) -> Tenant:
    return new_tenant(server)
