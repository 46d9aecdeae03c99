"""The fast path of leaf hashes answers exactly as the exact path does, or leaves it the case."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.model.strategies import event_contents, json_values

from trailkeep.errors import IntegrityError, ValidationFailedError
from trailkeep.model import evidence
from trailkeep.model.commitments import (
    COMMITTED_OBJECTS,
    REDACTED,
    commit_all,
    field_paths,
    leaf_hash,
    leaf_input,
    new_salts,
)
from trailkeep.model.evidence import (
    LeafRecomputer,
    decode_salts,
    encode_salts,
    event_leaf_hash,
)


@pytest.fixture(autouse=True, params=["native", "python"])
def plans(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with the C part (when built) and with the pure-Python plans."""
    if request.param == "python":
        monkeypatch.setattr(evidence, "_native_leaf", None)
    return str(request.param)


GOLDEN = json.loads((Path(__file__).parent / "golden" / "leaf_v1.json").read_text("utf-8"))
RECEIVED_AT = "2026-11-23T10:00:05.123456Z"
TENANT = "acme"


def stored(
    content: dict[str, Any],
    *,
    tenant: str = TENANT,
    seq: int = 7,
    event_id: str = "evt_01JDAB3K9Q7M2X5V8N4R6T0WYZ",
    received_at: str = RECEIVED_AT,
    salts: dict[str, bytes] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """An event in its wire form as the server stores it, and its salts as a dump holds them."""
    values = field_paths(content)
    salts = new_salts(values) if salts is None else salts
    leaf = leaf_hash(leaf_input(tenant, seq, event_id, received_at, commit_all(values, salts)))
    event = {"id": event_id, "tenant_id": tenant, "seq": seq, "received_at": received_at}
    return {**event, **content, "hash": leaf.hex()}, encode_salts(salts)


def exact(event: dict[str, Any], salts: dict[str, str]) -> bytes | None:
    """What the exact path accepts: the leaf hash when it computes one equal to the event's."""
    try:
        leaf = event_leaf_hash(event, decode_salts(salts), {})
    except IntegrityError:
        return None
    return leaf if event.get("hash") == leaf.hex() else None


def assert_agrees(event: Any, salts: Any, tenant: str = TENANT) -> bytes | None:
    """The fast path returns nothing, or exactly what the exact path accepts."""
    fast = LeafRecomputer(tenant).verified_leaf(event, salts)
    if fast is not None:
        assert fast == exact(event, salts)
    return fast


def is_common(content: dict[str, Any]) -> bool:
    """Whether every field of ``content`` is committed as stored (no null, no empty object)."""
    for name, value in content.items():
        if value is None:
            return False
        nulls = type(value) is dict and any(item is None for item in value.values())
        if name in COMMITTED_OBJECTS and type(value) is dict and (not value or nulls):
            return False
    return True


def without_nulls(content: dict[str, Any]) -> dict[str, Any]:
    """``content`` as the server stores it: null fields dropped (they are not committed)."""
    return {
        name: {k: v for k, v in value.items() if v is not None}
        if name in COMMITTED_OBJECTS and type(value) is dict
        else value
        for name, value in content.items()
        if value is not None
    }


class TestLeafRecomputerGolden:
    """The fast path rebuilds the pinned leaves of version 1."""

    @pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda case: case["name"])
    def test_golden_leaf(self, case: dict[str, Any]) -> None:
        salts = {p: bytes.fromhex(s) for p, s in case["salts"].items()}
        event, wire_salts = stored(
            without_nulls(case["content"]),
            tenant=case["tenant_id"],
            seq=case["seq"],
            event_id=case["id"],
            received_at=case["received_at"],
            salts=salts,
        )
        assert event["hash"] == case["leaf_hash"]
        leaf = LeafRecomputer(case["tenant_id"]).verified_leaf(event, wire_salts)
        assert leaf is not None
        assert leaf.hex() == case["leaf_hash"]


class TestLeafRecomputerAgrees:
    """Whatever the event, the fast path's answer is the exact path's, and it takes the common
    case: every value type, nested metadata, non-ASCII text and paths."""

    @given(content=event_contents, seq=st.integers(0, 2**53 - 1))
    def test_stored_events(self, content: dict[str, Any], seq: int) -> None:
        event, salts = stored(content, seq=seq)
        fast = assert_agrees(event, salts)
        if is_common(content):
            assert fast is not None
            assert fast.hex() == event["hash"]

    @given(
        metadata=st.dictionaries(
            st.text(min_size=1, max_size=8), json_values.filter(lambda v: v is not None), max_size=5
        )
    )
    def test_any_json_value(self, metadata: dict[str, Any]) -> None:
        try:
            event, salts = stored({"action": "a", "metadata": metadata})
        except ValidationFailedError:
            return  # a value without a canonical form is never stored
        fast = assert_agrees(event, salts)
        assert (fast is None) == (not metadata)  # an empty object is not committed

    def test_many_events_of_many_shapes(self) -> None:
        recomputer = LeafRecomputer(TENANT)
        for seq in range(60):
            content = {"action": f"a{seq}", "metadata": {f"k{i}": i for i in range(seq % 7 + 1)}}
            if seq % 3:
                content["actor"] = {"id": "ü" * seq, "type": "user"}
            event, salts = stored(content, seq=seq)
            assert recomputer.verified_leaf(event, salts) == exact(event, salts)

    def test_salts_in_any_order(self) -> None:
        event, salts = stored({"action": "a", "actor": {"id": "u", "email": "e"}, "message": "m"})
        backwards = dict(reversed(salts.items()))
        assert assert_agrees(event, backwards) == exact(event, salts) is not None

    def test_a_whole_value_named_like_an_object(self) -> None:
        event, salts = stored({"action": "a", "actor": "alice", "target": ["x", 1]})
        assert assert_agrees(event, salts) is not None


def _salt(event: dict[str, Any], salts: dict[str, str], text: str) -> None:
    salts["action"] = text


def _set(path: str, value: Any) -> Callable[[dict[str, Any], dict[str, str]], None]:
    def mutate(event: dict[str, Any], salts: dict[str, str]) -> None:
        name, _, key = path.partition(".")
        if key:
            event[name][key] = value
        else:
            event[name] = value

    return mutate


_SALT = base64.b64encode(bytes(range(16))).decode()

MUTATIONS: list[Any] = [
    pytest.param(_set("action", "forged"), id="changed-value"),
    pytest.param(_set("action", None), id="null-value"),
    pytest.param(_set("actor.email", None), id="null-object-value"),
    pytest.param(_set("actor.email", REDACTED), id="redaction-marker-with-its-salt"),
    pytest.param(_set("extra", "x"), id="added-field"),
    pytest.param(_set("extra", None), id="added-null-field"),
    pytest.param(_set("actor.extra", "x"), id="added-object-field"),
    pytest.param(lambda e, s: e.pop("message"), id="dropped-field"),
    pytest.param(lambda e, s: e["actor"].pop("email"), id="dropped-object-field"),
    pytest.param(lambda e, s: s.pop("message"), id="dropped-salt"),
    pytest.param(lambda e, s: s.update({"other": _SALT}), id="added-salt"),
    pytest.param(lambda e, s: s.update({"message": s["action"]}), id="swapped-salt"),
    pytest.param(_set("actor", "alice"), id="object-became-text"),
    pytest.param(_set("actor", ["u-1", "u@example.com"]), id="object-became-list"),
    pytest.param(_set("metadata", {}), id="emptied-object"),
    pytest.param(_set("metadata.n", 1.0), id="int-became-float"),
    pytest.param(_set("metadata.n", True), id="int-became-bool"),
    pytest.param(_set("metadata.n", 2**53), id="unsafe-int"),
    pytest.param(_set("metadata.n", "\ud800"), id="lone-surrogate"),
    pytest.param(_set("seq", True), id="bool-seq"),
    pytest.param(_set("seq", -7), id="negative-seq"),
    pytest.param(_set("seq", 7.0), id="float-seq"),
    pytest.param(_set("seq", "7"), id="text-seq"),
    pytest.param(_set("tenant_id", "other"), id="other-tenant"),
    pytest.param(_set("id", 'evt_"x'), id="quote-in-id"),
    pytest.param(_set("id", "evt\\x"), id="backslash-in-id"),
    pytest.param(_set("id", "evt\nx"), id="newline-in-id"),
    pytest.param(_set("id", 7), id="numeric-id"),
    pytest.param(_set("received_at", "2026-11-23T10:00:05Z"), id="short-received-at"),
    pytest.param(_set("received_at", "2026-11-23T10:00:05.123456+00:00"), id="offset"),
    pytest.param(_set("received_at", "\uff12026-11-23T10:00:05.123456Z"), id="wide-digit"),
    pytest.param(_set("hash", "0" * 64), id="other-hash"),
    pytest.param(lambda e, s: e.update(hash=e["hash"].upper()), id="uppercase-hash"),
    pytest.param(lambda e, s: e.pop("hash"), id="no-hash"),
    pytest.param(lambda e, s: e.pop("received_at"), id="no-received-at"),
    pytest.param(lambda e, s: _salt(e, s, s["action"] + "\n"), id="salt-with-newline"),
    pytest.param(lambda e, s: _salt(e, s, s["action"][:-2]), id="salt-without-padding"),
    pytest.param(lambda e, s: _salt(e, s, s["action"] + "AAAA"), id="salt-excess-data"),
    pytest.param(lambda e, s: _salt(e, s, "!" + s["action"][1:]), id="salt-junk"),
    pytest.param(lambda e, s: _salt(e, s, s["action"][:20]), id="salt-15-bytes"),
    pytest.param(lambda e, s: _salt(e, s, s["action"][:22] + "A="), id="salt-17-bytes"),
    pytest.param(lambda e, s: _salt(e, s, s["action"][:22] + "AA"), id="salt-18-bytes"),
    pytest.param(lambda e, s: _salt(e, s, s["action"][:22] + "é="), id="salt-not-ascii"),
    pytest.param(lambda e, s: _salt(e, s, 7), id="salt-not-text"),
]


class TestLeafRecomputerFallsBack:
    """Any change to a stored event is either caught (no leaf) or one the exact path accepts
    too: the fast path never vouches for what the exact path would reject."""

    @pytest.mark.parametrize("mutate", MUTATIONS)
    def test_mutation(self, mutate: Callable[[dict[str, Any], dict[str, str]], None]) -> None:
        content = {
            "action": "login",
            "actor": {"id": "u-1", "email": "u@example.com"},
            "message": "hello",
            "metadata": {"n": 5},
        }
        event, salts = stored(content)
        assert assert_agrees(event, salts) is not None
        mutate(event, salts)
        assert assert_agrees(event, salts) is None

    @settings(suppress_health_check=[HealthCheck.too_slow])
    @given(
        content=event_contents,
        mutation=st.sampled_from([m.values[0] for m in MUTATIONS]),
    )
    def test_mutation_of_any_event(self, content: dict[str, Any], mutation: Any) -> None:
        event, salts = stored({**content, "actor": {"id": "u", "email": "e"}, "metadata": {}})
        event["metadata"] = {"n": 1}
        event["message"] = "m"
        try:
            mutation(event, salts)
        except (KeyError, TypeError):
            return
        assert_agrees(event, salts)

    @given(
        event=st.dictionaries(st.text(max_size=12), json_values, max_size=8),
        salts=st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=8),
    )
    def test_anything(self, event: dict[str, Any], salts: dict[str, str]) -> None:
        assert_agrees(event, salts)

    @pytest.mark.parametrize(
        ("event", "salts"),
        [
            pytest.param([], {}, id="event-not-an-object"),
            pytest.param({}, ["action"], id="salts-not-an-object"),
            pytest.param({}, 7, id="salts-not-iterable"),
            pytest.param({}, [[1]], id="salts-unhashable"),
            pytest.param({}, {}, id="no-fields"),
        ],
    )
    def test_not_events(self, event: Any, salts: Any) -> None:
        assert LeafRecomputer(TENANT).verified_leaf(event, salts) is None

    @pytest.mark.parametrize("kind", [list, tuple, "".join], ids=["list", "tuple", "text"])
    def test_salts_of_another_type(self, kind: Callable[[Any], Any]) -> None:
        event, salts = stored({"a": "x", "b": "y"})  # the keys of salts "ab" are "a" and "b"
        assert LeafRecomputer(TENANT).verified_leaf(event, salts) is not None
        assert LeafRecomputer(TENANT).verified_leaf(event, kind(salts)) is None

    @pytest.mark.parametrize(
        "paths",
        [
            pytest.param({"foo.bar": 1}, id="dotted-top-level-name"),
            pytest.param({"actor": 1, "actor.id": 1}, id="object-whole-and-by-keys"),
            pytest.param({"seq": 1}, id="positional-field"),
            pytest.param({"metadata.\ud800": 1}, id="lone-surrogate-path"),
        ],
    )
    def test_shapes_no_event_fits(self, paths: dict[str, int]) -> None:
        assert evidence._plan(tuple(paths), native=True) is None
        event, _ = stored({"action": "a"})
        assert LeafRecomputer(TENANT).verified_leaf(event, dict.fromkeys(paths, _SALT)) is None

    def test_a_redaction_commitment_for_a_salted_field(self) -> None:
        """Claiming an erasure of a field that is there with its salt is refused, not ignored."""
        event, salts = stored({"action": "login", "actor": {"id": "u1"}})
        with pytest.raises(evidence.FieldMismatchError, match="not erased") as caught:
            event_leaf_hash(event, decode_salts(salts), {"actor.id": bytes(32)})
        assert caught.value.path == "actor.id"

    def test_salt_with_spare_bits(self) -> None:
        """``...AB==`` decodes to the bytes of ``...AA==`` (binascii drops the spare bits):
        the exact path accepts it, so the fast path must not answer otherwise."""
        event, salts = stored({"action": "a"}, salts={"action": bytes(16)})
        assert salts["action"] == "A" * 22 + "=="
        salts["action"] = "A" * 21 + "B=="
        assert exact(event, salts) is not None
        assert assert_agrees(event, salts) == exact(event, salts)

    def test_plans_are_capped(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(evidence, "_MAX_PLANS", 2)
        recomputer = LeafRecomputer(TENANT)
        results = []
        for n in range(4):
            event, salts = stored({"action": "a", "metadata": {f"k{i}": i for i in range(n + 1)}})
            results.append(recomputer.verified_leaf(event, salts))
        assert [leaf is not None for leaf in results] == [True, True, False, False]
