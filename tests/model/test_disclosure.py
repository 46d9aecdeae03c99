"""A bundle's filter: judged three ways from what is known, and read strictly from JSON."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.model.strategies import event_contents

from trailkeep.model.commitments import field_paths
from trailkeep.model.disclosure import ABSENT, BundleFilter, Clause, path_value

LOGIN = Clause("action", values=("user.login", "user.logout"))
SINCE = Clause("timestamp", op=">=", bound="2026-01-02T00:00:00.000000Z")
BOTH = BundleFilter((LOGIN, SINCE))
DAY2 = "2026-01-02T10:00:00.000000Z"


class TestClause:
    """Only strings pass; `in` is equality, comparisons are code-point order."""

    @pytest.mark.parametrize(
        ("clause", "value", "passes"),
        [
            pytest.param(LOGIN, "user.login", True, id="in"),
            pytest.param(LOGIN, "User.Login", False, id="case-sensitive"),
            pytest.param(LOGIN, ["user.login"], False, id="array-is-not-element"),
            pytest.param(Clause("n", values=("1",)), 1, False, id="number-is-not-string"),
            pytest.param(SINCE, DAY2, True, id="later"),
            pytest.param(SINCE, "2026-01-01T23:59:59.999999Z", False, id="earlier"),
            pytest.param(Clause("timestamp", op="<", bound=DAY2), DAY2, False, id="lt-exclusive"),
        ],
    )
    def test_passes(self, clause: Clause, value: Any, passes: bool) -> None:
        assert clause.passes(value) is passes

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param({"path": "seq", "in": ["1"]}, id="positional"),
            pytest.param({"path": "received_at", "op": ">", "value": "x"}, id="received-at"),
            pytest.param({"path": "old.x", "in": ["1"]}, id="not-a-committed-object"),
            pytest.param({"path": "action", "in": [1]}, id="non-string-value"),
            pytest.param({"path": "action", "in": "x"}, id="in-not-a-list"),
            pytest.param({"path": "action", "op": "!=", "value": "x"}, id="bad-op"),
            pytest.param({"path": "action", "in": ["x"], "op": ">"}, id="both-kinds"),
            pytest.param({"in": ["x"]}, id="no-path"),
            pytest.param(["action"], id="not-an-object"),
        ],
    )
    def test_malformed_json_is_refused(self, data: Any) -> None:
        with pytest.raises(ValueError, match=r"clause|path"):
            Clause.from_json(data)

    def test_round_trip(self) -> None:
        assert BundleFilter.from_json(BOTH.to_json()) == BOTH


class TestVerdict:
    """True only when every clause is known to pass; False as soon as one is shown to fail."""

    @pytest.mark.parametrize(
        ("known", "committed", "verdict"),
        [
            pytest.param({"action": "user.login", "timestamp": DAY2}, {"action", "timestamp"},
                         True, id="all-known-pass"),
            pytest.param({"action": "doc.edit"}, {"action", "timestamp"}, False,
                         id="one-disclosed-fails"),
            pytest.param({}, {"timestamp"}, False, id="field-absent-from-commitments"),
            pytest.param({"action": "user.login"}, {"action", "timestamp"}, None,
                         id="one-unknown"),
            pytest.param({}, {"action", "timestamp"}, None, id="nothing-disclosed"),
        ],
    )  # fmt: skip
    def test_verdict(self, known: dict[str, Any], committed: set[str], verdict: bool) -> None:
        assert BOTH.verdict(known, committed) is verdict

    def test_no_clauses_match_everything(self) -> None:
        assert BundleFilter().verdict({}, set()) is True

    @pytest.mark.parametrize(
        ("values", "salted", "witness"),
        [
            pytest.param({"action": "doc.edit"}, {"action"}, ["action"], id="disclose-action"),
            pytest.param({"timestamp": DAY2}, {"timestamp"}, [], id="absent-needs-nothing"),
            pytest.param({"action": "doc.edit", "timestamp": DAY2}, {"timestamp"}, None,
                         id="erased-action-cannot-tell"),
            pytest.param({"action": "user.login", "timestamp": "2025-01-01"}, {"action"}, None,
                         id="erased-time"),
            pytest.param({"action": "doc.edit", "timestamp": "2025-01-01"}, {"timestamp"},
                         ["timestamp"], id="another-clause-shows-it"),
        ],
    )  # fmt: skip
    def test_witness(
        self, values: dict[str, Any], salted: set[str], witness: list[str] | None
    ) -> None:
        assert BOTH.witness(values, salted) == witness


@given(event_contents, st.sampled_from(["action", "actor.id", "actor", "metadata.k",
                                        "target.type", "message", "category"]))  # fmt: skip
def test_path_value_reads_what_field_paths_commits(content: dict[str, Any], path: str) -> None:
    paths = field_paths(content)
    value = path_value(content, path)
    assert (value is ABSENT) == (path not in paths)
    if path in paths:
        assert value == paths[path]
