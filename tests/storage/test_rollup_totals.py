"""Totals of one low-cardinality field (SQLite sums its day rollups): the count a walk of every
event gives, on every backend, also after an erasure moves events out of a value."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests.storage.reference import ref_count
from tests.storage.test_store import make_tenant, new_event
from trailkeep.model.event import StoredEvent
from trailkeep.query.ast import And, Values
from trailkeep.query.filters import EventQuery
from trailkeep.service.events import Limits
from trailkeep.service.redaction import RedactionService
from trailkeep.service.stores import open_store
from trailkeep.storage._compile import DIALECTS
from trailkeep.storage._select import count_sql
from trailkeep.storage.base import Store

_ACTIONS = ["login", "logout", "Login", "doc.read"]
_CATEGORIES: list[Any] = ["users", "Users", "docs", 5, None]
_KINDS = ["document", "user", "doc"]


def _event(rng: random.Random) -> dict[str, Any]:
    event: dict[str, Any] = {
        "action": rng.choice(_ACTIONS),
        "outcome": rng.choice(["success", "failure", "unknown"]),
        "timestamp": f"2026-11-0{rng.randint(1, 6)}T{rng.randint(0, 23):02d}:00:00Z",
    }
    category = rng.choice(_CATEGORIES)
    if category is not None:
        event["category"] = category
    if rng.random() < 0.7:
        event["target"] = {"type": rng.choice(_KINDS), "id": "t"}
    return event


@pytest.fixture
def filled(store_url: str) -> Iterator[tuple[Store, list[StoredEvent]]]:
    store = open_store(store_url, sqlite_synchronous="NORMAL")
    try:
        rng = random.Random(5)
        make_tenant(store)
        make_tenant(store, "other")
        store.append("other", [new_event(**_event(rng)) for _ in range(50)]).result()
        stored = [
            a.event
            for a in store.append("acme", [new_event(**_event(rng)) for _ in range(400)]).result()
        ]
        erased = [e for e in stored if "category" in e.content][:5]
        service = RedactionService(store, Limits())
        for victim in erased:
            asyncio.run(service.redact("acme", victim.id, ["category"], "tkc_admin"))
        # The truth after erasure, redaction records included, as the store now reads it.
        yield store, store.select("acme", EventQuery(limit=1000))
    finally:
        store.close()


_QUERIES = [
    pytest.param(Values(("action",), ("login",)), id="action"),
    pytest.param(Values(("action",), ("login", "Login", "nope")), id="actions"),
    pytest.param(Values(("category",), ("users",)), id="category"),
    pytest.param(Values(("category",), ("Users", "docs")), id="categories"),
    pytest.param(Values(("category",), (5,)), id="category-number"),
    pytest.param(Values(("outcome",), ("failure",)), id="outcome"),
    pytest.param(Values(("target", "type"), ("document", "doc")), id="target-type"),
    pytest.param(Values(("target", "type"), ("missing",)), id="no-match"),
    pytest.param(Values(("action",), ()), id="no-values"),
]


class TestTotals:
    """Each total equals the brute-force count."""

    @pytest.mark.parametrize("where", _QUERIES)
    def test_whole_tenant(self, filled: tuple[Store, list[StoredEvent]], where: Values) -> None:
        store, events = filled
        assert len(events) > 400
        query = EventQuery(where)
        assert store.count("acme", query) == ref_count(events, query)


class TestWhenItApplies:
    """Only one low-cardinality field with string values, over the whole tenant (SQLite's day
    rollups) or a range of more than an hour (the hour totals, both backends)."""

    @pytest.mark.parametrize(
        ("query", "rolled"),
        [
            pytest.param(EventQuery(Values(("action",), ("a",))), True, id="action"),
            pytest.param(EventQuery(Values(("target", "type"), ("a",))), True, id="kind"),
            pytest.param(EventQuery(Values(("actor", "id"), ("a",))), False, id="actor"),
            pytest.param(EventQuery(Values(("action",), (5,))), False, id="number"),
            pytest.param(
                EventQuery(Values(("action",), ("a",)), start="2026-11-01T00:00:00.000000Z"),
                True,
                id="range",
            ),
            pytest.param(
                EventQuery(
                    Values(("action",), ("a",)),
                    start="2026-11-01T00:00:00.000000Z",
                    end="2026-11-01T00:10:00.000000Z",
                ),
                False,
                id="one-hour",
            ),
            pytest.param(EventQuery(Values(("action",), ("a",)), max_seq=3), False, id="max-seq"),
            pytest.param(
                EventQuery(And((Values(("action",), ("a",)), Values(("outcome",), ("b",))))),
                False,
                id="two-fields",
            ),
        ],
    )
    def test_sqlite(self, query: EventQuery, rolled: bool) -> None:
        assert ("facet_counts" in count_sql("t", query, DIALECTS["sqlite"]).sql) is rolled

    def test_postgres(self) -> None:
        # No day rollups: the hour totals, for action, outcome and target.type only.
        query = EventQuery(Values(("action",), ("a",)))
        assert "facet_counts" not in count_sql("t", query, DIALECTS["postgres"]).sql
        assert "hour_totals" in count_sql("t", query, DIALECTS["postgres"]).sql
        kind = EventQuery(Values(("target", "type"), ("a",)))
        assert "hour_totals" in count_sql("t", kind, DIALECTS["postgres"]).sql
        category = EventQuery(Values(("category",), ("a",)))
        assert "hour_totals" not in count_sql("t", category, DIALECTS["postgres"]).sql
