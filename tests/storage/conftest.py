"""The contract suite's one fixture: a fresh store of every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trailkeep.service.stores import open_store
from trailkeep.storage.base import Store

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url, sqlite_synchronous="NORMAL")
    yield opened
    opened.close()
