"""The Pangea envelope of a stored event and its hash: the leaf of Pangea's tree."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailkeep.model.pangea import (
    canonical_json,
    envelope,
    envelope_hash,
    native_event,
    pangea_leaf,
)

sdk = pytest.importorskip("pangea.services.audit.util", reason="pangea-sdk (compat extra)")

RECEIVED = "2024-01-01T00:00:00.000000Z"


class TestEnvelopeHash:
    """The hash is the one Pangea's SDK recomputes, byte for byte."""

    def test_compat_doc_vector(self) -> None:
        env = {"event": {"actor": "alice", "message": "a"}, "received_at": RECEIVED}
        assert envelope_hash(env).hex() == (
            "01d9ec86e077bc8498f7bd242395bf2766c1bb4d7d70eabc2af09922f643a342"
        )

    @settings(max_examples=200, deadline=None)
    @given(
        st.dictionaries(
            st.text(min_size=1, max_size=8),
            st.one_of(st.text(max_size=20), st.integers(-(2**53), 2**53), st.booleans()),
            min_size=1,
            max_size=6,
        )
    )
    def test_agrees_with_the_sdk(self, event: dict[str, Any]) -> None:
        env = {"event": event, "received_at": RECEIVED}
        assert envelope_hash(env).hex() == sdk.hash_dict(env)

    def test_non_ascii_and_control_characters_as_python_writes_them(self) -> None:
        assert (
            canonical_json({"b": "é\u2028\x01", "a": 1}) == '{"a":1,"b":"é\u2028\\u0001"}'.encode()
        )


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return {"a": value}


def _reference(value: Any) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
    ).encode("utf-8")


class TestCanonicalJsonFastPath:
    """``canonical_json`` takes orjson where it can; its bytes are always ``json``'s."""

    @settings(max_examples=200, deadline=None)
    @given(_JSON)
    def test_same_bytes_as_json(self, value: Any) -> None:
        assert canonical_json(value) == _reference(value)

    @settings(max_examples=100, deadline=None)
    @given(st.dictionaries(st.text(), st.text(), min_size=1, max_size=8))
    def test_native_leaf_same_as_the_envelope_hash(self, fields: dict[str, str]) -> None:
        content = {"action": "a", "message": fields.get("message", "m"), "metadata": fields}
        content |= {"actor": {"id": next(iter(fields))}, "old": fields, "new": list(fields)}
        env = envelope(content, RECEIVED)
        assert pangea_leaf(content, RECEIVED) == envelope_hash(env)
        assert envelope_hash(env).hex() == sdk.hash_dict(env)

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param({"a": 1.0, "b": 1e16}, id="floats"),
            pytest.param({"a": 2**64, "b": -(2**63) - 1}, id="beyond-64-bits"),
            pytest.param({"a": (1, 2)}, id="tuple"),
            pytest.param({"\U0001f600": 1, "\uffff": 2, "~": 3}, id="keys-beyond-the-bmp"),
            pytest.param(_nested(70), id="deeper-than-the-fast-path"),
        ],
    )
    def test_edge_values(self, value: Any) -> None:
        assert canonical_json(value) == _reference(value)

    def test_lone_surrogate_still_refused(self) -> None:
        with pytest.raises(UnicodeEncodeError):
            canonical_json({"a": "\ud800"})


class TestEnvelopeOfAnEvent:
    """Written through Pangea: verbatim; any other event: the documented field mapping."""

    def test_pangea_event_is_kept_verbatim_with_its_signature(self) -> None:
        sent = {"message": "m", "new": '{"a":1}', "custom": 3}
        content = {
            "action": "pangea.log",
            "metadata": {"pangea": {"event": sent, "signature": "c2ln", "public_key": "k"}},
        }
        assert envelope(content, RECEIVED) == {
            "event": sent,
            "received_at": RECEIVED,
            "signature": "c2ln",
            "public_key": "k",
        }

    def test_native_event_mapping(self) -> None:
        content = {
            "action": "document.update",
            "outcome": "success",
            "timestamp": RECEIVED,
            "actor": {"id": "alice", "email": "a@x"},
            "target": {"id": "doc-1"},
            "source": {"ip": "10.0.0.1"},
            "new": {"b": 2, "a": 1},
            "old": "v1",
        }
        assert native_event(content) == {
            "message": "document.update",
            "action": "document.update",
            "actor": "alice",
            "target": "doc-1",
            "source": "10.0.0.1",
            "status": "success",
            "timestamp": RECEIVED,
            "new": '{"a":1,"b":2}',
            "old": "v1",
        }

    def test_no_null_keys(self) -> None:
        env = envelope({"action": "login"}, RECEIVED)
        assert env == {"event": {"message": "login", "action": "login"}, "received_at": RECEIVED}
