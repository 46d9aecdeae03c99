"""The facet planner's pure parts: which plan a query gets, which searches fold into filters,
and the one-pass counter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trailkeep.query.compile import compile_query
from trailkeep.query.facets import (
    FacetPlan,
    choose_plan,
    count_rows,
    days_between,
    fold_search,
    rank,
    scan_sql,
)
from trailkeep.query.filters import EventQuery, SqlFragment

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY2 = "2026-11-02T00:00:00.000000Z"
DAY4 = "2026-11-04T00:00:00.000000Z"


def q(text: str) -> SqlFragment:
    return compile_query(text, "sqlite", now=NOW)


class TestFoldSearch:
    """A search of ANDed field:value terms and timestamp bounds becomes filters; anything
    else stays a search."""

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
        folded = fold_search(EventQuery(search=q(text)))
        assert (folded.filters, folded.start, folded.end, folded.search) == (
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
            pytest.param("denied outcome:failure", id="free-text-and-field"),
            pytest.param("outcome:failure outcome:success", id="field-twice"),
            pytest.param("timestamp>2026-11-02", id="exclusive-lower-bound"),
            pytest.param("timestamp<=2026-11-02", id="inclusive-upper-bound"),
            pytest.param("seq>5", id="seq"),
            pytest.param("id:evt_1", id="not-a-filter-field"),
            pytest.param("metadata.model:gpt-4o", id="json"),
        ],
    )
    def test_leaves_unchanged(self, text: str) -> None:
        query = EventQuery(search=q(text))
        assert fold_search(query) is query

    def test_field_also_filtered_is_left_alone(self) -> None:
        query = EventQuery({"outcome": ["success"]}, search=q("outcome:failure"))
        assert fold_search(query) is query

    def test_bounds_narrow_the_range(self) -> None:
        query = EventQuery(
            start=DAY2,
            end="2026-11-09T00:00:00.000000Z",
            search=q("timestamp>=2026-11-01 timestamp<2026-11-04"),
        )
        assert (fold_search(query).start, fold_search(query).end) == (DAY2, DAY4)


class TestChoosePlan:
    """Rollups for a time range, a covering index for facet filters, a scan otherwise."""

    @pytest.mark.parametrize(
        ("query", "plan"),
        [
            pytest.param(EventQuery(), FacetPlan("rollups"), id="everything"),
            pytest.param(EventQuery(start=DAY2), FacetPlan("rollups"), id="time-range"),
            pytest.param(
                EventQuery({"action": ["login"]}), FacetPlan("index", "action"), id="action"
            ),
            pytest.param(
                EventQuery({"outcome": ["failure"]}), FacetPlan("index", "outcome"), id="outcome"
            ),
            pytest.param(
                EventQuery({"outcome": ["failure"], "action": ["login"]}),
                FacetPlan("index", "action"),
                id="action-preferred",
            ),
            pytest.param(
                EventQuery({"category": ["users"], "target.type": ["doc"]}),
                FacetPlan("index", "action"),
                id="no-index-of-their-own",
            ),
            pytest.param(
                EventQuery({"action": ["login"], "actor.id": ["u1"]}),
                FacetPlan("index", "action"),
                id="action-and-actor",
            ),
            pytest.param(EventQuery({"actor.id": ["u1"]}), FacetPlan("scan"), id="actor"),
            pytest.param(
                EventQuery({"category": ["users"], "actor.id": ["u1"]}),
                FacetPlan("scan"),
                id="category-and-actor",
            ),
            pytest.param(
                EventQuery({"action": ["login"], "session_id": ["s"]}),
                FacetPlan("scan"),
                id="not-a-facet-filter",
            ),
            pytest.param(EventQuery(search=q("denied")), FacetPlan("scan"), id="search"),
            pytest.param(
                EventQuery({"action": ["login"]}, max_seq=10), FacetPlan("scan"), id="paged"
            ),
        ],
    )
    def test_plan(self, query: EventQuery, plan: FacetPlan) -> None:
        assert choose_plan(query) == plan


class TestScanSql:
    """The one-pass scan reads full-text matches by rowid when nothing else selects."""

    @pytest.mark.parametrize(
        ("query", "by_rowid"),
        [
            pytest.param(EventQuery(search=q("denied")), True, id="free-text"),
            pytest.param(EventQuery(search=q("denied outcome:failure")), True, id="and-field"),
            pytest.param(EventQuery(search=q("denied OR outcome:failure")), False, id="or"),
            pytest.param(EventQuery(search=q("-denied")), False, id="not"),
            pytest.param(EventQuery({"action": ["x"]}, search=q("denied")), False, id="filter"),
            pytest.param(EventQuery(start=DAY2, search=q("denied")), False, id="time-range"),
            pytest.param(EventQuery({"actor.id": ["u1"]}), False, id="no-search"),
        ],
    )
    def test_rowid_hint(self, query: EventQuery, by_rowid: bool) -> None:
        sql = scan_sql("acme", query).sql
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
