"""The search corpus through each backend's store: every query finds exactly its events.

``tests/query`` proves the compiler on a hand-built SQLite table; this proves the stores keep
what the compiled SQL reads (filter columns, body, full-text index) in step with their writes,
redactions included, in the backend's own dialect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from tests.query.corpus import CASES, EVENTS, NOW
from tests.query.strategies import query_texts, trees
from tests.storage.conftest import BACKENDS
from tests.storage.test_store import make_tenant, new_event
from trailkeep.model.event import NewEvent
from trailkeep.model.tenant import Tenant
from trailkeep.query.ast import Node
from trailkeep.query.errors import QuerySyntaxError
from trailkeep.query.filters import EventQuery
from trailkeep.query.times import fix_times
from trailkeep.service.events import Limits
from trailkeep.service.redaction import RedactionService
from trailkeep.service.selection import search_tree
from trailkeep.service.stores import open_store
from trailkeep.storage._compile import DialectName
from trailkeep.storage.base import Store

#: Another tenant holding a copy of every event: a search must never reach it.
OTHER = [dict(event, id="other-" + event["id"]) for event in EVENTS]


def corpus_event(event: dict[str, object]) -> NewEvent:
    """The corpus event as stored: its own id, received when it happened, no salts."""
    content = {key: value for key, value in event.items() if key != "id"}
    received = cast(str, content["timestamp"])
    return NewEvent(cast(str, event["id"]), received, content, orjson.dumps(content), {}, {})


@pytest.fixture(scope="module", params=BACKENDS)
def corpus(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, DialectName]]:
    """One store per backend holding the corpus, shared by every case (they only read)."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_server").create_schema()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'store.db'}"
    store = open_store(url, sqlite_synchronous="NORMAL")
    for tenant, events in (("acme", EVENTS), ("other", OTHER)):
        store.create_tenant(Tenant(tenant, "2026-01-01T00:00:00.000000Z"))
        store.append(tenant, [corpus_event(e) for e in events]).result()
    yield store, request.param
    store.close()


def found(store: Store, dialect: DialectName, query: str, tenant: str = "acme") -> set[str]:
    page = store.list_events(tenant, EventQuery(search_tree(query, NOW), limit=1000))
    return {event.id for event in page.events}


class TestCorpus:
    """Each query of the shared corpus finds exactly its events, and only in its tenant."""

    @pytest.mark.parametrize(("query", "expected"), CASES)
    def test_query(self, corpus: tuple[Store, DialectName], query: str, expected: set[str]) -> None:
        assert found(*corpus, query) == expected


class TestRedactedText:
    """An erased field stops matching free text and field queries, on every backend."""

    @pytest.fixture(params=BACKENDS)
    def fresh(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> Iterator[tuple[Store, DialectName]]:
        if request.param == "postgres":
            url = request.getfixturevalue("pg_url")
        else:
            url = f"sqlite:///{tmp_path / 'store.db'}"
        opened = open_store(url, sqlite_synchronous="NORMAL")
        yield opened, request.param
        opened.close()

    def test_erasure(self, fresh: tuple[Store, DialectName]) -> None:
        store, dialect = fresh
        make_tenant(store)
        event = new_event(message="quarterly payroll", actor={"id": "u1", "name": "Mallory"})
        stored = store.append("acme", [event]).result()[0].event
        assert found(store, dialect, "payroll") == {stored.id}
        assert found(store, dialect, "actor.name:Mallory") == {stored.id}
        redaction = RedactionService(store, Limits())
        asyncio.run(redaction.redact("acme", stored.id, ["message", "actor.name"], "admin"))
        assert found(store, dialect, "payroll") == set()
        assert found(store, dialect, "Mallory") == set()
        assert found(store, dialect, "actor.name:Mallory") == set()
        assert found(store, dialect, "actor.id:u1") == {stored.id}


class TestAnyQueryRuns:
    """Whatever the query, its SQL runs on every backend: no driver error reaches the caller."""

    @settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(tree=trees)
    def test_trees(self, corpus: tuple[Store, DialectName], tree: Node) -> None:
        store, _ = corpus
        try:
            where = fix_times(tree, NOW)
        except QuerySyntaxError:
            return
        store.list_events("acme", EventQuery(where, limit=1000))

    @settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=query_texts)
    def test_text(self, corpus: tuple[Store, DialectName], text: str) -> None:
        try:
            where = search_tree(text, NOW)
        except QuerySyntaxError:
            return
        page = corpus[0].list_events("acme", EventQuery(where, limit=1000))
        assert {e.id for e in page.events} <= {e["id"] for e in EVENTS}
