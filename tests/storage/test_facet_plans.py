"""The facet planner's pure parts: which plan a query gets, which conditions of its tree fold
into filters and range, and the one-pass counter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.storage.queries import event_query
from trailkeep.query.ast import Compare, Values
from trailkeep.query.facets import count_rows, rank
from trailkeep.query.filters import EventQuery
from trailkeep.storage._compile import DIALECTS
from trailkeep.storage._facets import (
    FacetPlan,
    FacetSelection,
    choose_plan,
    days_between,
    scan_sql,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY2 = "2026-11-02T00:00:00.000000Z"
DAY4 = "2026-11-04T00:00:00.000000Z"


def fold(query: EventQuery) -> FacetSelection:
    return FacetSelection.of(query, now=NOW)


def q(text: str) -> EventQuery:
    return event_query(q=text, now=NOW)


class TestFold:
    """ANDed filter values, ``field:value`` terms and timestamp bounds become filters and
    range; anything else stays a condition."""

    @pytest.mark.parametrize(
        ("text", "filters", "start", "end"),
        [
            pytest.param("outcome:failure", {"outcome": ["failure"]}, None, None, id="one-field"),
            pytest.param(
                "action:login outcome:failure",
                {"action": ["login"], "outcome": ["failure"]},
                None,
                None,
                id="two-fields",
            ),
            pytest.param(
                "(action:login actor.id:u1) category:users",
                {"action": ["login"], "actor.id": ["u1"], "category": ["users"]},
                None,
                None,
                id="nested-and",
            ),
            pytest.param(
                "outcome:failure timestamp>=2026-11-02 timestamp<2026-11-04",
                {"outcome": ["failure"]},
                DAY2,
                DAY4,
                id="time-bounds",
            ),
            pytest.param(
                "actor.email:bob@x.io", {"actor.email": ["bob@x.io"]}, None, None, id="any-filter"
            ),
        ],
    )
    def test_folds(
        self, text: str, filters: dict[str, list[str]], start: str | None, end: str | None
    ) -> None:
        folded = fold(q(text))
        assert (folded.filters, folded.start, folded.end, folded.rest) == (
            filters,
            start,
            end,
            None,
        )

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("action:login OR outcome:failure", id="or"),
            pytest.param("-outcome:failure", id="not"),
            pytest.param("action:login*", id="prefix"),
            pytest.param("category:*", id="present"),
            pytest.param("denied", id="free-text"),
            pytest.param("timestamp>2026-11-02", id="exclusive-lower-bound"),
            pytest.param("timestamp<=2026-11-02", id="inclusive-upper-bound"),
            pytest.param("seq>5", id="seq"),
            pytest.param("id:evt_1", id="not-a-filter-field"),
            pytest.param("metadata.model:gpt-4o", id="json"),
        ],
    )
    def test_leaves_unchanged(self, text: str) -> None:
        query = q(text)
        folded = fold(query)
        assert (folded.filters, folded.start, folded.end, folded.rest) == (
            {},
            None,
            None,
            query.where,
        )

    def test_field_named_twice_keeps_the_second_as_a_condition(self) -> None:
        folded = fold(event_query({"outcome": ["success"]}, q="outcome:failure", now=NOW))
        assert folded.filters == {"outcome": ["success"]}
        assert folded.rest is not None
        assert "failure" in repr(folded.rest)

    def test_bounds_narrow_the_range(self) -> None:
        query = event_query(
            start=DAY2,
            end="2026-11-09T00:00:00.000000Z",
            q="timestamp>=2026-11-01 timestamp<2026-11-04",
            now=NOW,
        )
        assert (fold(query).start, fold(query).end) == (DAY2, DAY4)

    def test_folds_beside_other_conditions(self) -> None:
        folded = fold(q("denied outcome:failure"))
        assert folded.filters == {"outcome": ["failure"]}
        assert folded.rest == q("denied").where

    def test_tree_nodes_fold_too(self) -> None:
        where = Values(("actor", "id"), ("u1", "u2"))
        query = EventQuery(where=where, start=DAY2)
        assert fold(query).filters == {"actor.id": ["u1", "u2"]}
        bound = EventQuery(where=Compare(("timestamp",), "<", DAY4))
        assert (fold(bound).end, fold(bound).rest) == (DAY4, None)

    def test_non_string_values_stay_a_condition(self) -> None:
        query = EventQuery(where=Values(("category",), (5,)))
        assert fold(query).filters == {}


class TestChoosePlan:
    """Rollups for a time range, a covering index for facet filters, a scan otherwise."""

    @pytest.mark.parametrize(
        ("query", "plan"),
        [
            pytest.param(EventQuery(), FacetPlan("rollups"), id="everything"),
            pytest.param(EventQuery(start=DAY2), FacetPlan("rollups"), id="time-range"),
            pytest.param(
                event_query({"action": ["login"]}), FacetPlan("index", "action"), id="action"
            ),
            pytest.param(
                event_query({"outcome": ["failure"]}), FacetPlan("index", "outcome"), id="outcome"
            ),
            pytest.param(
                event_query({"outcome": ["failure"], "action": ["login"]}),
                FacetPlan("index", "action"),
                id="action-preferred",
            ),
            pytest.param(
                event_query({"category": ["users"], "target.type": ["doc"]}),
                FacetPlan("index", "action"),
                id="no-index-of-their-own",
            ),
            pytest.param(
                event_query({"action": ["login"], "actor.id": ["u1"]}),
                FacetPlan("index", "action"),
                id="action-and-actor",
            ),
            pytest.param(event_query({"actor.id": ["u1"]}), FacetPlan("scan"), id="actor"),
            pytest.param(
                event_query({"category": ["users"], "actor.id": ["u1"]}),
                FacetPlan("scan"),
                id="category-and-actor",
            ),
            pytest.param(
                event_query({"action": ["login"], "session_id": ["s"]}),
                FacetPlan("scan"),
                id="not-a-facet-filter",
            ),
            pytest.param(q("denied"), FacetPlan("scan"), id="search"),
            pytest.param(
                event_query({"action": ["login"]}, max_seq=10), FacetPlan("scan"), id="paged"
            ),
        ],
    )
    def test_plan(self, query: EventQuery, plan: FacetPlan) -> None:
        assert choose_plan(fold(query)) == plan


class TestScanSql:
    """The one-pass scan reads full-text matches by rowid when nothing else selects."""

    @pytest.mark.parametrize(
        ("query", "by_rowid"),
        [
            pytest.param(q("denied"), True, id="free-text"),
            pytest.param(q("denied outcome:failure"), True, id="and-field"),
            pytest.param(q("denied OR outcome:failure"), False, id="or"),
            pytest.param(q("-denied"), False, id="not"),
            pytest.param(event_query({"action": ["x"]}, q="denied", now=NOW), True, id="filter"),
            pytest.param(event_query(start=DAY2, q="denied", now=NOW), False, id="time-range"),
            pytest.param(event_query({"actor.id": ["u1"]}), False, id="no-search"),
        ],
    )
    def test_rowid_hint(self, query: EventQuery, by_rowid: bool) -> None:
        sql = scan_sql("acme", fold(query), DIALECTS["sqlite"]).sql
        assert (" WHERE +tenant_id = ?" in sql) is by_rowid


class TestCountRows:
    """One-pass counting: totals, ranked values without NULLs, a histogram suiting the span."""

    def test_counts(self) -> None:
        rows = [
            ("2026-11-02T10:00", "users", "login", "success", None, "u1", 1),
            ("2026-11-02T10:00", "users", "login", "failure", "doc", "u2", 2),
            ("2026-11-02T10:59", None, "logout", "success", "doc", "u1", 3),
        ]
        got = count_rows(iter(rows), 2)
        assert got.total == 3
        assert got.bucket == "minute"
        assert got.histogram == [("2026-11-02T10:00", 2), ("2026-11-02T10:59", 1)]
        assert got.dimensions == {
            "category": [("users", 2)],
            "action": [("login", 2), ("logout", 1)],
            "outcome": [("success", 2), ("failure", 1)],
            "target.type": [("doc", 2)],
            "actor.id": [("u1", 2), ("u2", 1)],
        }

    def test_empty(self) -> None:
        assert count_rows(iter([]), 5).total == 0

    def test_rank_drops_nulls_and_non_positive(self) -> None:
        assert rank({"a": 2, "b": 0, "c": -1, None: 9, "d": 2}, 5) == [("a", 2), ("d", 2)]

    def test_days_between(self) -> None:
        assert days_between("2026-10-30", "2026-11-02") == [
            "2026-10-30",
            "2026-10-31",
            "2026-11-01",
        ]
        assert days_between("2026-11-02", "2026-11-02") == []
