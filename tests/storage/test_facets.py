"""Facet counts equal a brute-force count of the events, whichever plan a backend takes.

SQLite answers a time range from its rollups, facet filters from a covering index walk (a
majority filter as everything minus the rest), and the rest by one scan; PostgreSQL groups.
Each case here is shaped to take one of those plans, over ranges that exercise whole days,
whole hours and ragged edges; a Hypothesis test mixes them; erasures must keep all exact.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.storage.conftest import BACKENDS
from tests.storage.queries import event_query
from tests.storage.test_store import make_tenant, new_event
from trailkeep.query.facets import DIMENSIONS, FacetCounts
from trailkeep.query.filters import EventQuery
from trailkeep.service.events import Limits
from trailkeep.service.redaction import RedactionService
from trailkeep.service.stores import open_store
from trailkeep.storage.base import Store

Event = dict[str, Any]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

RANGES = [
    pytest.param(None, None, id="everything"),
    pytest.param("2026-11-02T00:00:00.000000Z", "2026-11-05T00:00:00.000000Z", id="whole-days"),
    pytest.param("2026-11-01T07:30:00.000000Z", "2026-11-04T13:15:00.000000Z", id="ragged-edges"),
    pytest.param("2026-11-03T10:00:00.000000Z", None, id="open-end"),
    pytest.param(None, "2026-11-02T05:00:00.000000Z", id="open-start"),
    pytest.param("2026-11-02T10:05:00.000000Z", "2026-11-02T11:20:00.000000Z", id="short"),
    pytest.param("2027-01-01T00:00:00.000000Z", None, id="empty"),
]
#: Facet name → where its value sits in the wire event.
PATHS = {
    "action": ("action",),
    "category": ("category",),
    "outcome": ("outcome",),
    "target.type": ("target", "type"),
    "actor.id": ("actor", "id"),
}


def _events(n: int, seed: int = 7) -> list[Event]:
    """Five days of events; outcomes skewed so that ``success`` is most of any range."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        day, hour, minute = rng.randint(1, 5), rng.randint(0, 23), rng.randint(0, 59)
        event: Event = {
            "action": rng.choice(["login", "logout", "doc.update", "doc.delete"]),
            "timestamp": f"2026-11-0{day}T{hour:02d}:{minute:02d}:00Z",
            "outcome": rng.choices(["success", "failure", "unknown"], [8, 1, 1])[0],
            "actor": {"id": f"u{rng.randint(1, 12)}", "email": "x@y.z"},
        }
        if rng.random() < 0.7:
            event["category"] = rng.choice(["users", "auth", "system"])
        if rng.random() < 0.8:
            event["target"] = {"type": rng.choice(["doc", "session"]), "id": "t"}
        if rng.random() < 0.5:
            event["message"] = rng.choice(["permission denied", "timeout while saving", "ok"])
        out.append(event)
    return out


def _value(event: Event, name: str) -> Any:
    value: Any = event
    for key in PATHS[name]:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _expected(
    stored: list[Event],
    start: str | None,
    end: str | None,
    keep: Callable[[Event], bool] = lambda e: True,
    top: int = 5,
) -> dict[str, Any]:
    chosen = [
        e
        for e in stored
        if (start is None or e["timestamp"] >= start)
        and (end is None or e["timestamp"] < end)
        and keep(e)
    ]
    dims = {}
    for name in PATHS:
        counter = Counter(v for e in chosen if isinstance(v := _value(e, name), str))
        dims[name] = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return {"total": len(chosen), "dims": dims}


def _assert_exact(got: FacetCounts, want: dict[str, Any]) -> None:
    assert (got.total, got.dimensions) == (want["total"], want["dims"])
    assert sum(n for _, n in got.histogram) == want["total"]
    assert set(got.dimensions) == set(DIMENSIONS)


def _is(name: str, *values: str) -> Callable[[Event], bool]:
    return lambda e: _value(e, name) in values


def _denied(e: Event) -> bool:
    return "denied" in str(e.get("message", "")).split()


#: (filters, q, the same selection in Python). Comments name the SQLite plan each takes.
SELECTIONS = [
    # covering index, sought by its leading column; a lone filter's hours from the rollups
    pytest.param({"action": ["login"]}, None, _is("action", "login"), id="action"),
    pytest.param(
        {"action": ["login", "logout"]}, None, _is("action", "login", "logout"), id="action-in"
    ),
    pytest.param({"outcome": ["failure"]}, None, _is("outcome", "failure"), id="outcome-minority"),
    # most of the range: everything from the rollups minus a walk of the rest
    pytest.param({"outcome": ["success"]}, None, _is("outcome", "success"), id="outcome-majority"),
    pytest.param(
        {"outcome": ["success", "unknown"]},
        None,
        _is("outcome", "success", "unknown"),
        id="outcome-majority-in",
    ),
    # several filters: hours and dimensions from the index
    pytest.param(
        {"action": ["login"], "outcome": ["failure", "unknown"]},
        None,
        lambda e: _is("action", "login")(e) and _is("outcome", "failure", "unknown")(e),
        id="action-and-outcome",
    ),
    pytest.param(
        {"outcome": ["success"], "actor.id": ["u3"]},
        None,
        lambda e: _is("outcome", "success")(e) and _is("actor.id", "u3")(e),
        id="outcome-and-actor",
    ),
    # no index of their own (and NULLs): a walk of the tenant's whole covering index
    pytest.param({"category": ["users"]}, None, _is("category", "users"), id="category"),
    pytest.param(
        {"category": ["users", "auth"], "target.type": ["doc"]},
        None,
        lambda e: _is("category", "users", "auth")(e) and _is("target.type", "doc")(e),
        id="category-and-target",
    ),
    # their own index finds few events: one scan
    pytest.param({"actor.id": ["u3"]}, None, _is("actor.id", "u3"), id="actor"),
    # a search of plain terms folds into filters
    pytest.param({}, "outcome:failure", _is("outcome", "failure"), id="q-field"),
    pytest.param(
        {"action": ["login", "logout"]},
        "outcome:success",
        lambda e: _is("action", "login", "logout")(e) and _is("outcome", "success")(e),
        id="q-field-and-filter",
    ),
    pytest.param(
        {},
        "action:doc.update timestamp>=2026-11-02T06:00:00Z timestamp<2026-11-04T18:30:00Z",
        lambda e: (
            _is("action", "doc.update")(e)
            and "2026-11-02T06:00:00.000000Z" <= e["timestamp"] < "2026-11-04T18:30:00.000000Z"
        ),
        id="q-field-and-time",
    ),
    # anything else: one scan
    pytest.param(
        {},
        "action:login OR outcome:failure",
        lambda e: _is("action", "login")(e) or _is("outcome", "failure")(e),
        id="q-or",
    ),
    pytest.param({}, "-outcome:success", lambda e: not _is("outcome", "success")(e), id="q-not"),
    pytest.param(
        {"outcome": ["success"]}, "outcome:failure", lambda e: False, id="q-contradicts-filter"
    ),
    pytest.param({}, "denied", _denied, id="q-free-text"),
    pytest.param(
        {},
        "denied outcome:failure",
        lambda e: _denied(e) and _is("outcome", "failure")(e),
        id="q-free-text-and-field",
    ),
    pytest.param(
        {"action": ["login"]},
        "denied",
        lambda e: _denied(e) and _is("action", "login")(e),
        id="q-free-text-and-filter",
    ),
]


@pytest.fixture(scope="module", params=BACKENDS)
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, list[Event]]]:
    """One store per backend with the events (and a copy in another tenant), read-only."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_server").create_schema()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('facets') / 'store.db'}"
    store = open_store(url, sqlite_synchronous="NORMAL")
    make_tenant(store)
    make_tenant(store, "other")
    events = _events(600)
    stored = [
        a.event.to_wire() for a in store.append("acme", [new_event(**e) for e in events]).result()
    ]
    store.append("other", [new_event(**e) for e in events[:200]]).result()
    yield store, stored
    store.close()


class TestFacets:
    """Every dimension's top values and the total match a brute-force count."""

    @pytest.mark.parametrize(("start", "end"), RANGES)
    def test_time_range(
        self, filled: tuple[Store, list[Event]], start: str | None, end: str | None
    ) -> None:
        store, stored = filled
        _assert_exact(
            store.facets("acme", EventQuery(start=start, end=end), 5), _expected(stored, start, end)
        )

    @pytest.mark.parametrize(("filters", "q", "keep"), SELECTIONS)
    @pytest.mark.parametrize(("start", "end"), RANGES)
    def test_selection(
        self,
        filled: tuple[Store, list[Event]],
        filters: dict[str, list[str]],
        q: str | None,
        keep: Callable[[Event], bool],
        start: str | None,
        end: str | None,
    ) -> None:
        store, stored = filled
        got = store.facets("acme", event_query(filters, start, end, q=q, now=NOW), 5)
        _assert_exact(got, _expected(stored, start, end, keep))

    def test_short_span_counts_minutes(self, store: Store) -> None:
        """All events in one hour: the histogram is by minute, the counts still exact."""
        make_tenant(store)
        events = [
            {**e, "timestamp": f"2026-11-02T10:{i % 60:02d}:00Z"}
            for i, e in enumerate(_events(120))
        ]
        stored = [
            a.event.to_wire()
            for a in store.append("acme", [new_event(**e) for e in events]).result()
        ]
        for filters in ({}, {"action": ["login"]}):
            got = store.facets("acme", event_query(filters), 5)
            want = _expected(
                stored, None, None, _is("action", "login") if filters else lambda e: True
            )
            assert (got.total, got.dimensions, got.bucket) == (
                want["total"],
                want["dims"],
                "minute",
            )
        assert dict(store.facets("acme", EventQuery(), 5).histogram) == {
            f"2026-11-02T10:{m:02d}": 2 for m in range(60)
        }


class TestAfterErasure:
    """An erased value leaves every count, of whole days and of hours alike."""

    @pytest.mark.asyncio
    @pytest.mark.parametrize(("start", "end"), RANGES[:4])
    @pytest.mark.parametrize(
        "filters",
        [
            pytest.param({}, id="rollups"),
            pytest.param({"action": ["login", "logout"]}, id="index"),
            pytest.param({"outcome": ["success"]}, id="index-majority"),
            pytest.param({"category": ["users"]}, id="index-whole"),
        ],
    )
    async def test_erased_fields(
        self, store: Store, filters: dict[str, list[str]], start: str | None, end: str | None
    ) -> None:
        make_tenant(store)
        stored = [
            a.event.to_wire()
            for a in store.append("acme", [new_event(**e) for e in _events(150)]).result()
        ]
        # On the partial days of the ragged range, which count hour rollups.
        victims = [
            e
            for e in stored
            if e["timestamp"][:12] in ("2026-11-01T1", "2026-11-04T0") and "category" in e
        ]
        service = RedactionService(store, Limits(), integrity=True)
        for victim in victims[:6]:
            await service.redact("acme", victim["id"], ["actor.id", "category"], "tkc_admin")
        # The truth after erasure, audit events included, as the store now reads it.
        truth = [e.to_wire() for e in store.list_events("acme", EventQuery(limit=1000)).events]
        assert len(truth) == 156

        def keep(e: Event) -> bool:
            return all(_value(e, name) in values for name, values in filters.items())

        got = store.facets("acme", event_query(filters, start, end), 20)
        _assert_exact(got, _expected(truth, start, end, keep, top=20))


class TestHypothesis:
    """Any mix of facet filters, plain search terms and time range counts exactly."""

    @settings(max_examples=60, deadline=None)
    @given(data=st.data())
    def test_any_selection(self, filled: tuple[Store, list[Event]], data: st.DataObject) -> None:
        store, stored = filled
        values = {
            name: sorted({v for e in stored if isinstance(v := _value(e, name), str)})
            for name in PATHS
        }
        filters = {}
        for name in data.draw(st.lists(st.sampled_from(list(PATHS)), max_size=3, unique=True)):
            pool = [*values[name], "absent"]
            filters[name] = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
        times = [
            None,
            *(
                f"2026-11-0{d}T{h:02d}:{m:02d}:00.000000Z"
                for d in (1, 2, 3, 4, 5, 6)
                for h in (0, 7, 23)
                for m in (0, 30)
            ),
        ]
        start, end = data.draw(st.sampled_from(times)), data.draw(st.sampled_from(times))
        terms = data.draw(
            st.lists(
                st.sampled_from(
                    [
                        "outcome:failure",
                        "action:login",
                        "category:users",
                        "denied",
                        "timestamp>=2026-11-03T05:00:00Z",
                    ]
                ),
                max_size=2,
                unique=True,
            )
        )

        def keep(e: Event) -> bool:
            if not all(_value(e, k) in v for k, v in filters.items()):
                return False
            for term in terms:
                if term == "denied":
                    if not _denied(e):
                        return False
                elif term.startswith("timestamp>="):
                    if e["timestamp"] < "2026-11-03T05:00:00.000000Z":
                        return False
                else:
                    name, value = term.split(":")
                    if _value(e, name) != value:
                        return False
            return True

        q = " ".join(terms) if terms else None
        got = store.facets("acme", event_query(filters, start, end, q=q, now=NOW), 5)
        _assert_exact(got, _expected(stored, start, end, keep))
