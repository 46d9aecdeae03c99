"""Ingest's fast path (``commit_fields``, ``leaf_prefix`` + ``leaf_input_from``) writes exactly
the bytes of the general contract functions, or steps aside."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.model.strategies import event_contents, json_values

from trailkeep.errors import ValidationFailedError
from trailkeep.model import _native
from trailkeep.model.canonical import MAX_SAFE_INTEGER
from trailkeep.model.commitments import (
    SALT_SIZE,
    commit_all,
    commit_fields,
    field_paths,
    leaf_input,
    leaf_input_from,
    leaf_prefix,
)
from trailkeep.model.ids import new_event_id

RECEIVED_AT = "2026-11-23T10:00:05.123456Z"
_paths = st.text(min_size=1).filter(lambda p: "." not in p) | st.sampled_from(
    ["actor.id", "metadata.model", "message", "metadata.\u00f6", "metadata.\ue000", "m.\U0001f600"]
)
_commitments = st.dictionaries(_paths, st.binary(min_size=32, max_size=32), max_size=12)


@pytest.fixture(params=["native", "python"])
def plans(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """With the C part (when built) and without it."""
    if request.param == "python":
        monkeypatch.setattr(_native, "commit", None)
        monkeypatch.setattr(_native, "prefix", None)
    return str(request.param)


@pytest.mark.usefixtures("plans")
class TestCommitFields:
    @given(event_contents)
    def test_equals_commit_all_over_its_own_salts(self, content: dict[str, Any]) -> None:
        values = field_paths(content)
        try:
            salts, commitments = commit_fields(values)
        except ValidationFailedError as exc:
            fast_error = exc
        else:
            fast_error = None
        if fast_error is not None:
            with pytest.raises(ValidationFailedError) as general:
                commit_all(values, {p: bytes(SALT_SIZE) for p in values})
            assert general.value.message.partition(":")[0] == fast_error.message.partition(":")[0]
            return
        assert list(salts) == sorted(values) == list(commitments)
        assert all(len(s) == SALT_SIZE for s in salts.values())
        assert commitments == commit_all(values, salts)

    @given(st.dictionaries(st.text(min_size=1).filter(lambda p: "." not in p), json_values))
    def test_any_value(self, values: dict[str, Any]) -> None:
        try:
            salts, commitments = commit_fields(values)
        except ValidationFailedError:
            return
        assert commitments == commit_all(values, salts)

    def test_salts_are_fresh(self) -> None:
        assert commit_fields({"a": "x"})[0] != commit_fields({"a": "x"})[0]

    @given(st.dictionaries(st.text(min_size=1).filter(lambda p: "." not in p), json_values))
    def test_salts_from_a_pool(self, values: dict[str, Any]) -> None:
        """The caller's pool is the salts, cut in sorted path order."""
        pool = bytes(i % 251 for i in range(SALT_SIZE * len(values)))
        try:
            salts, commitments = commit_fields(values, pool)
        except ValidationFailedError:
            return
        assert b"".join(salts.values()) == pool
        assert list(salts) == sorted(values) == list(commitments)
        assert commitments == commit_all(values, salts)

    @pytest.mark.parametrize("size", [0, SALT_SIZE - 1, 3 * SALT_SIZE])
    def test_a_pool_of_the_wrong_size(self, size: int) -> None:
        with pytest.raises(ValueError, match="pool"):
            commit_fields({"a": "x", "b": 1}, bytes(size))


@pytest.mark.usefixtures("plans")
class TestLeafPrefix:
    @given(
        _commitments,
        st.text(max_size=20),
        st.integers(0, MAX_SAFE_INTEGER),
    )
    def test_completes_to_leaf_input(
        self, commitments: dict[str, bytes], tenant_id: str, seq: int
    ) -> None:
        event_id = new_event_id()
        prefix = leaf_prefix(event_id, RECEIVED_AT, commitments)
        if not "".join(commitments).isascii():
            assert prefix is None
            return
        assert prefix is not None
        try:
            expected = leaf_input(tenant_id, seq, event_id, RECEIVED_AT, commitments)
        except ValidationFailedError:
            with pytest.raises(ValidationFailedError):
                leaf_input_from(prefix, tenant_id, seq)
            return
        assert leaf_input_from(prefix, tenant_id, seq) == expected

    @pytest.mark.parametrize(
        ("event_id", "received_at", "commitments"),
        [
            ("evt_1", "2026-11-23T10:00:05Z", {}),
            (7, RECEIVED_AT, {}),
            ("evt_1", RECEIVED_AT, {"a": b"short"}),
            ("evt_\ud800", RECEIVED_AT, {}),
        ],
    )
    def test_steps_aside(self, event_id: Any, received_at: str, commitments: Any) -> None:
        assert leaf_prefix(event_id, received_at, commitments) is None

    @pytest.mark.parametrize("seq", [-1, MAX_SAFE_INTEGER + 1, True, 1.0])
    def test_refuses_bad_positions(self, seq: Any) -> None:
        prefix = leaf_prefix("evt_1", RECEIVED_AT, {})
        assert prefix is not None
        with pytest.raises(ValidationFailedError):
            leaf_input_from(prefix, "acme", seq)
