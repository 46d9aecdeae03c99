"""select, count and distinct: every node kind, order and window, on every backend, equal to a
brute-force evaluation over all events (``tests/storage/reference.py``)."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.storage.conftest import BACKENDS
from tests.storage.reference import ref_count, ref_distinct, ref_select
from tests.storage.test_store import make_tenant, new_event
from trailkeep.errors import QueryTimeoutError, UnavailableError
from trailkeep.model.event import StoredEvent
from trailkeep.query.ast import (
    And,
    Compare,
    Contains,
    Each,
    Exists,
    Node,
    Not,
    Or,
    Term,
    Values,
)
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.service.stores import open_store
from trailkeep.storage.base import Store

SCALARS: list[Any] = [
    *("a", "A", "b", "ab", "Ab", "é", "É", "", "1", '["a",1]', '{"x":"a"}'),
    *(1, 2, 2.0, 1.5, -3, True, False),
]
VALUES: list[Any] = [*SCALARS, None, [], ["a", 1], [{"t": "a"}], {"x": "a"}]


def _random_event(rng: random.Random, i: int) -> dict[str, Any]:
    day = rng.randint(1, 5)
    event: dict[str, Any] = {
        "action": rng.choice(["login", "logout", "doc.update", "Login"]),
        "timestamp": f"2026-11-0{day}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
        "outcome": rng.choice(["success", "failure"]),
    }
    if rng.random() < 0.7:
        event["category"] = rng.choice(["users", "agents", 5, "Users"])
    if rng.random() < 0.8:
        event["actor"] = {"id": rng.choice(["u1", "u2", "U1", 7]), "type": "user"}
    metadata: dict[str, Any] = {}
    for key in ("k1", "model"):  # model: an indexed virtual column in SQLite
        if rng.random() < 0.7:
            metadata[key] = rng.choice(VALUES)
    if rng.random() < 0.4:
        metadata["o"] = {"x": rng.choice(SCALARS)}
    if rng.random() < 0.5:
        metadata["items"] = [
            {"t": rng.choice(["a", "b", "A"]), "v": rng.choice([1, 2, "1"])}
            for _ in range(rng.randint(0, 3))
        ] + ([rng.choice(["a", 1])] if rng.random() < 0.3 else [])
    if metadata:
        event["metadata"] = metadata
    event["message"] = f"event {i}"
    return event


class Filled(tuple[Store, list[StoredEvent]]):
    """A store and its events, with a short repr for Hypothesis' failure reports."""

    def __repr__(self) -> str:
        return f"Filled({type(self[0]).__name__}, {len(self[1])} events)"


@pytest.fixture(scope="module", params=BACKENDS)
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Filled]:
    """One store per backend with 150 random events in ``acme`` (and noise in ``other``)."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_server").create_schema()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('select') / 'store.db'}"
    store = open_store(url, sqlite_synchronous="NORMAL")
    rng = random.Random(13)
    make_tenant(store)
    make_tenant(store, "other")
    events = [new_event(**_random_event(rng, i)) for i in range(150)]
    stored = [a.event for a in store.append("acme", events).result()]
    store.append("other", [new_event(**_random_event(rng, i)) for i in range(20)]).result()
    yield Filled((store, stored))
    store.close()


FIELDS: list[tuple[str, ...]] = [
    ("action",),
    ("category",),
    ("actor", "id"),
    ("metadata", "k1"),
    ("metadata", "model"),
    ("metadata", "o", "x"),
    ("metadata", "items"),
    ("timestamp",),
    ("seq",),
    ("message",),
]
scalars = st.sampled_from([v for v in SCALARS if type(v) is not float])
element_fields = st.sampled_from([(), ("t",), ("v",)])
texts = st.sampled_from(["a", "A", "b", "", "ab", "1", "vent 1", "OG", "é"])
compare_values = st.sampled_from(["a", "b", "B", "", 1, 2, 0, "2026-11-03T00:00:00.000000Z"])
ops = st.sampled_from([">", ">=", "<", "<="])


def _element_nodes() -> st.SearchStrategy[Node]:
    leaves = st.one_of(
        st.builds(Values, element_fields, st.lists(scalars, max_size=3).map(tuple)),
        st.builds(Exists, element_fields),
        st.builds(
            Contains,
            st.lists(element_fields, min_size=1, max_size=2).map(tuple),
            texts,
            st.booleans(),
        ),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(Not, inner),
            st.lists(inner, max_size=3).map(lambda c: And(tuple(c))),
            st.lists(inner, max_size=3).map(lambda c: Or(tuple(c))),
        ),
        max_leaves=4,
    )


fields = st.sampled_from(FIELDS)
leaves = st.one_of(
    st.builds(Values, fields, st.lists(scalars, max_size=3).map(tuple)),
    st.builds(Exists, fields),
    st.builds(Contains, st.lists(fields, min_size=1, max_size=2).map(tuple), texts, st.booleans()),
    st.builds(Compare, fields, ops, compare_values),
    st.builds(Each, st.just(("metadata", "items")), _element_nodes()),
    st.builds(
        lambda f, v: Term(f, ":", v),
        st.sampled_from([("action",), ("metadata", "k1"), ("metadata", "model"), ("actor", "id")]),
        st.sampled_from(["a", "1", "true", "login", "u1", "2"]),
    ),
)
trees: st.SearchStrategy[Node] = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.lists(inner, max_size=3).map(lambda c: And(tuple(c))),
        st.lists(inner, max_size=3).map(lambda c: Or(tuple(c))),
    ),
    max_leaves=6,
)
bounds = st.sampled_from([None, "2026-11-02T00:00:00.000000Z", "2026-11-04T12:00:00.000000Z"])
queries = st.builds(
    EventQuery,
    where=st.none() | trees,
    start=bounds,
    end=bounds,
    sort=st.sampled_from(Sort),
    order_by=st.none() | fields,
    limit=st.integers(1, 40),
    offset=st.integers(0, 160),
    max_seq=st.none() | st.integers(-1, 160),
    after_seq=st.none() | st.integers(-1, 160),
)


def _ids(events: list[StoredEvent]) -> list[str]:
    return [e.id for e in events]


def _typed(pairs: list[tuple[object, int]]) -> Counter[tuple[str, Any]]:
    out: Counter[tuple[str, Any]] = Counter()
    for value, n in pairs:
        kind = {bool: "bool", int: "number", float: "number", str: "string"}.get(
            type(value), "json"
        )
        out[(kind, value if kind != "json" else repr(value))] += n
    return out


class TestAgainstReference:
    """Random trees, orders and windows give the reference's items, order and totals."""

    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(query=queries)
    def test_select_and_count(self, filled: Filled, query: EventQuery) -> None:
        store, events = filled
        assert _ids(store.select("acme", query)) == _ids(ref_select(events, query))
        assert store.count("acme", query) == ref_count(events, query)

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(query=queries, field=fields)
    def test_distinct(self, filled: Filled, query: EventQuery, field: tuple[str, ...]) -> None:
        store, events = filled
        got = store.distinct("acme", field, query, 1000)
        counts = [n for _, n in got]
        assert counts == sorted(counts, reverse=True)
        expected = ref_distinct(events, field, query)
        if field == ("metadata", "items"):  # arrays and objects: counted, not compared as JSON
            assert sum(counts) == sum(expected.values())
        else:
            assert _typed(got) == expected


@pytest.fixture
def small(store: Store) -> tuple[Store, list[StoredEvent]]:
    make_tenant(store)
    rows: list[dict[str, Any]] = [
        {"metadata": {"n": 123, "s": "123", "flag": True, "arr": ["x", "y"], "model": 123}},
        {"metadata": {"n": 123.0, "s": "Xyz", "flag": False, "arr": "x", "model": "123"}},
        {"metadata": {"s": None, "list": [{"k": "v", "n": 1}, {"k": "w"}], "model": ["x"]}},
        {"metadata": {"0": "zero", "arr": [{"0": "q"}], "model": '["x"]'}, "message": "model"},
    ]
    for row, action in zip(rows, "abcd", strict=True):
        row["action"] = action
    stored = [a.event for a in store.append("acme", [new_event(**r) for r in rows]).result()]
    return store, stored


_MODEL: tuple[str, ...] = ("metadata", "model")


def _matches(store: Store, node: Node) -> set[str]:
    events = store.select("acme", EventQuery(node, sort=Sort.ASC, limit=100))
    return {e.content["action"] for e in events}


class TestPinned:
    """The contract's sharp edges, stated literally."""

    @pytest.mark.parametrize(
        ("node", "actions"),
        [
            pytest.param(Values(("metadata", "n"), (123,)), {"a", "b"}, id="int-matches-numbers"),
            pytest.param(Values(("metadata", "n"), ("123",)), set(), id="str-never-a-number"),
            pytest.param(Values(("metadata", "s"), ("123",)), {"a"}, id="str-matches-string"),
            pytest.param(Values(("metadata", "flag"), (True,)), {"a"}, id="bool-true"),
            pytest.param(Values(("metadata", "flag"), (1,)), set(), id="bool-is-no-number"),
            pytest.param(Values(("metadata", "arr"), ("x",)), {"b"}, id="arrays-not-element-wise"),
            pytest.param(Values(("metadata", "s"), ()), set(), id="no-values-no-match"),
            pytest.param(Exists(("metadata", "s")), {"a", "b"}, id="exists-skips-null"),
            pytest.param(Not(Exists(("metadata", "s"))), {"c", "d"}, id="not-is-two-valued"),
            pytest.param(Contains((("metadata", "s"),), "xY"), {"b"}, id="contains-folds-case"),
            pytest.param(
                Contains((("metadata", "s"),), "xY", ignore_case=False), set(), id="contains-exact"
            ),
            pytest.param(Compare(("metadata", "n"), ">=", 123), {"a", "b"}, id="compare-number"),
            pytest.param(Compare(("metadata", "s"), ">", "2"), {"b"}, id="compare-string"),
            pytest.param(
                Each(("metadata", "list"), And((Values(("k",), ("w",)), Not(Exists(("n",)))))),
                {"c"},
                id="each-element-keys",
            ),
            pytest.param(Each(("metadata", "arr"), Values((), ("y",))), {"a"}, id="each-itself"),
            pytest.param(Each(("metadata", "arr"), Exists(("0",))), {"d"}, id="digit-key"),
            pytest.param(Values(("metadata", "0"), ("zero",)), {"d"}, id="digit-top-key"),
            pytest.param(And(()), {"a", "b", "c", "d"}, id="empty-and-everything"),
            # metadata.model is an indexed virtual column in SQLite: the same answers.
            pytest.param(Values(_MODEL, ("123",)), {"b"}, id="indexed-str-never-a-number"),
            pytest.param(Values(_MODEL, (123,)), {"a"}, id="indexed-int"),
            pytest.param(Values(_MODEL, ("123", 123)), {"a", "b"}, id="indexed-str-and-int"),
            pytest.param(Values(_MODEL, ('["x"]',)), {"d"}, id="indexed-str-never-an-array"),
            pytest.param(Values(_MODEL, ("x",)), set(), id="indexed-not-element-wise"),
            pytest.param(Or(()), set(), id="empty-or-nothing"),
        ],
    )
    def test_node(
        self, small: tuple[Store, list[StoredEvent]], node: Node, actions: set[str]
    ) -> None:
        assert _matches(small[0], node) == actions

    def test_order_by_puts_missing_first(self, small: tuple[Store, list[StoredEvent]]) -> None:
        query = EventQuery(order_by=("metadata", "s"), sort=Sort.ASC, limit=10)
        got = [e.content["action"] for e in small[0].select("acme", query)]
        assert got[2:] == ["a", "b"]  # null and missing first, then "123" < "Xyz"

    def test_distinct_types(self, small: tuple[Store, list[StoredEvent]]) -> None:
        got = dict(small[0].distinct("acme", ("metadata", "flag"), EventQuery(), 10))
        assert got == {True: 1, False: 1}
        numbers = small[0].distinct("acme", ("metadata", "n"), EventQuery(), 10)
        assert [(v, n) for v, n in numbers] == [(123, 2)]


class TestQueryTimeout:
    """A read past ``query_timeout`` stops with QueryTimeoutError, and the store serves on."""

    def test_heavy_read_stops(self, store: Store) -> None:
        make_tenant(store)
        rows = [
            new_event(metadata={"note": f"entry {i} " + "x" * 200, "n": i}) for i in range(3000)
        ]
        store.append("acme", rows).result()
        heavy = EventQuery(
            Or(tuple(Contains((("metadata", "note"),), f"zz{i}") for i in range(40)))
        )
        store.query_timeout = 0.001
        with pytest.raises(QueryTimeoutError) as info:
            store.count("acme", heavy)
        assert info.value.code == "QUERY_TIMEOUT"
        with pytest.raises(QueryTimeoutError):
            store.select("acme", heavy)
        store.query_timeout = 10.0
        assert store.count("acme", heavy) == 0
        assert len(store.select("acme", EventQuery(limit=5))) == 5


def test_closing_a_sqlite_store_ends_its_running_reads(tmp_path: Path) -> None:
    """A read still running when the store closes (its request abandoned at the end of the
    shutdown grace) ends at once, instead of holding the process's exit for its whole run."""
    store = open_store(f"sqlite:///{tmp_path / 'trailkeep.db'}")
    endless = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT max(i) FROM r"
    started = threading.Event()
    outcome: list[BaseException] = []

    def read(conn: sqlite3.Connection) -> None:
        started.set()
        conn.execute(endless).fetchone()

    def run() -> None:
        try:
            store._read(read)  # type: ignore[attr-defined]
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30)
    time.sleep(0.05)  # let the statement get going
    store.close()
    thread.join(60)  # liveness, not speed: without the interrupt the read never ends
    assert not thread.is_alive()
    assert [type(e) for e in outcome] == [UnavailableError]
