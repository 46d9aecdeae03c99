"""The integrity contract (DESIGN §3): field paths, salts, commitments, leaves and redaction."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.model.strategies import event_contents

from trailkeep.errors import IntegrityError, ValidationFailedError
from trailkeep.model.canonical import jcs
from trailkeep.model.commitments import (
    COMMITTED_OBJECTS,
    LEAF_VERSION,
    REDACTED,
    SALT_SIZE,
    commit_all,
    commitment,
    field_paths,
    is_redacted,
    leaf_hash,
    leaf_input,
    new_salts,
    recommit,
    unflatten,
)

GOLDEN = json.loads((Path(__file__).parent / "golden" / "leaf_v1.json").read_text("utf-8"))
CASES = {case["name"]: case for case in GOLDEN["cases"]}
RECEIVED_AT = "2026-11-23T10:00:05.123456Z"


def _salts(case: dict[str, Any]) -> dict[str, bytes]:
    return {p: bytes.fromhex(s) for p, s in case["salts"].items()}


def _commitments(case: dict[str, Any]) -> dict[str, bytes]:
    return {p: bytes.fromhex(c) for p, c in case["commitments"].items()}


def _leaf(case: dict[str, Any], commitments: dict[str, bytes]) -> bytes:
    return leaf_input(case["tenant_id"], case["seq"], case["id"], case["received_at"], commitments)


def _golden_param(name: str) -> Any:
    return pytest.param(CASES[name], id=name)


GOLDEN_PARAMS = [_golden_param(name) for name in CASES]


class TestGoldenLeafV1:
    """Every byte of leaf version 1 matches vectors computed without trailkeep."""

    def test_the_file_is_version_1(self) -> None:
        assert GOLDEN["leaf_version"] == LEAF_VERSION == 1

    @pytest.mark.parametrize("case", GOLDEN_PARAMS)
    def test_field_paths(self, case: dict[str, Any]) -> None:
        assert list(field_paths(case["content"])) == list(case["canonical"])

    @pytest.mark.parametrize("case", GOLDEN_PARAMS)
    def test_canonical_values(self, case: dict[str, Any]) -> None:
        for path, value in field_paths(case["content"]).items():
            assert jcs(value) == case["canonical"][path].encode(), path

    @pytest.mark.parametrize("case", GOLDEN_PARAMS)
    def test_salts_follow_the_stated_rule(self, case: dict[str, Any]) -> None:
        for path, salt in _salts(case).items():
            rule = hashlib.sha256(b"trailkeep golden salt v1|" + path.encode()).digest()[:16]
            assert salt == rule, path

    @pytest.mark.parametrize("case", GOLDEN_PARAMS)
    def test_commitments(self, case: dict[str, Any]) -> None:
        got = commit_all(field_paths(case["content"]), _salts(case))
        assert {p: c.hex() for p, c in got.items()} == case["commitments"]

    @pytest.mark.parametrize("case", GOLDEN_PARAMS)
    def test_leaf_input(self, case: dict[str, Any]) -> None:
        assert _leaf(case, _commitments(case)) == case["leaf_input"].encode("utf-8")

    @pytest.mark.parametrize("case", GOLDEN_PARAMS)
    def test_leaf_hash(self, case: dict[str, Any]) -> None:
        assert leaf_hash(case["leaf_input"].encode("utf-8")).hex() == case["leaf_hash"]

    def test_whole_pipeline_from_content(self) -> None:
        case = CASES["typical"]
        values = field_paths(case["content"])
        leaf = _leaf(case, commit_all(values, _salts(case)))
        assert (
            leaf_hash(leaf).hex()
            == "81295b63046c32e8a7290f3dbd3a8f1f7ae7bdd21773c5b2758148bff94da2aa"
        )


class TestFieldPaths:
    """Content flattens to one path per top-level field and per key of the committed objects."""

    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            pytest.param({"action": "login"}, {"action": "login"}, id="one-field"),
            pytest.param(
                {"actor": {"id": "u1", "email": "a@b.c"}},
                {"actor.id": "u1", "actor.email": "a@b.c"},
                id="object-split-by-key",
            ),
            pytest.param(
                {"old": {"a": {"b": 1}}, "new": [1, 2]},
                {"old": {"a": {"b": 1}}, "new": [1, 2]},
                id="old-new-whole",
            ),
            pytest.param(
                {"metadata": {"a": {"deep": True}, "b.c": 1}},
                {"metadata.a": {"deep": True}, "metadata.b.c": 1},
                id="metadata-first-level-only",
            ),
            pytest.param(
                {"message": None, "actor": {"id": None, "name": "n"}},
                {"actor.name": "n"},
                id="nulls-skipped",
            ),
            pytest.param({"target": {}, "source": {"ip": None}}, {}, id="empty-objects-skipped"),
            pytest.param({"actor": "bob"}, {"actor": "bob"}, id="string-actor-whole"),
            pytest.param(
                {
                    "id": "evt_1",
                    "tenant_id": "t",
                    "seq": 3,
                    "received_at": "x",
                    "hash": "h",
                    "a": 1,
                },
                {"a": 1},
                id="server-fields-skipped",
            ),
            pytest.param(
                {"signature": {"alg": "Ed25519", "sig": "x"}},
                {"signature": {"alg": "Ed25519", "sig": "x"}},
                id="signature-whole",
            ),
        ],
    )
    def test_paths(self, content: dict[str, Any], expected: dict[str, Any]) -> None:
        assert field_paths(content) == expected

    @pytest.mark.parametrize(
        "content",
        [
            pytest.param({"actor.id": "u"}, id="dotted-top-level-key"),
            pytest.param({1: "x"}, id="int-top-level-key"),
            pytest.param({"metadata": {1: "x"}}, id="int-object-key"),
        ],
    )
    def test_rejects(self, content: dict[Any, Any]) -> None:
        with pytest.raises(ValidationFailedError):
            field_paths(content)

    def test_committed_objects(self) -> None:
        assert COMMITTED_OBJECTS == ("actor", "target", "source", "metadata")


class TestUnflatten:
    """unflatten rebuilds the content field_paths split, minus nulls and empty objects."""

    @given(event_contents)
    def test_round_trip(self, content: dict[str, Any]) -> None:
        expected: dict[str, Any] = {}
        for name, value in content.items():
            if name in COMMITTED_OBJECTS and type(value) is dict:
                value = {k: v for k, v in value.items() if v is not None} or None
            if value is not None:
                expected[name] = value
        assert unflatten(field_paths(content)) == expected

    @pytest.mark.parametrize(
        "paths",
        [
            pytest.param({"actor": "bob", "actor.id": "u"}, id="whole-then-key"),
            pytest.param({"actor.id": "u", "actor": "bob"}, id="key-then-whole"),
        ],
    )
    def test_conflicts(self, paths: dict[str, Any]) -> None:
        with pytest.raises(ValidationFailedError, match="conflicts"):
            unflatten(paths)

    def test_does_not_touch_its_input(self) -> None:
        paths = {"metadata.a.b": 1, "x.y": 2}
        assert unflatten(paths) == {"metadata": {"a.b": 1}, "x.y": 2}
        assert paths == {"metadata.a.b": 1, "x.y": 2}


class TestNewSalts:
    """Each path gets its own fresh 16-byte salt."""

    def test_one_salt_per_path(self) -> None:
        salts = new_salts({"a": 1, "b.c": 2, "d": 3})
        assert list(salts) == ["a", "b.c", "d"]
        assert all(len(s) == SALT_SIZE == 16 for s in salts.values())
        assert len(set(salts.values())) == 3

    def test_fresh_each_call(self) -> None:
        assert new_salts(["a"]) != new_salts(["a"])

    def test_no_paths(self) -> None:
        assert new_salts([]) == {}


class TestCommitment:
    """A commitment is SHA-256(salt ‖ JCS(value)) and refuses malformed salts."""

    def test_definition(self) -> None:
        salt = bytes(range(16))
        expected = hashlib.sha256(salt + b'{"a":1,"b":[true,null]}').digest()
        assert commitment(salt, {"b": [True, None], "a": 1}) == expected

    def test_salt_matters(self) -> None:
        assert commitment(b"\x00" * 16, "x") != commitment(b"\x01" + b"\x00" * 15, "x")

    @pytest.mark.parametrize("size", [pytest.param(n, id=f"{n}-bytes") for n in (0, 15, 17, 32)])
    def test_wrong_salt_size(self, size: int) -> None:
        with pytest.raises(ValidationFailedError, match="16 bytes"):
            commitment(b"\x00" * size, "x")


class TestCommitAll:
    """commit_all commits every path with its own salt and names the path that fails."""

    def test_matches_commitment(self) -> None:
        values = {"a": 1, "b": "x"}
        salts = {"a": b"\x01" * 16, "b": b"\x02" * 16}
        assert commit_all(values, salts) == {p: commitment(salts[p], v) for p, v in values.items()}

    @pytest.mark.parametrize(
        ("salts", "message"),
        [
            pytest.param({"a": b"\x00" * 16}, r"missing \['b'\]", id="missing-salt"),
            pytest.param(
                {"a": b"\x00" * 16, "b": b"\x00" * 16, "c": b"\x00" * 16},
                r"extra \['c'\]",
                id="extra-salt",
            ),
            pytest.param({"a": b"\x00" * 16, "b": b"\x00"}, "^b: a salt is 16 bytes", id="short"),
        ],
    )
    def test_salt_mismatch(self, salts: dict[str, bytes], message: str) -> None:
        with pytest.raises(ValidationFailedError, match=message):
            commit_all({"a": 1, "b": 2}, salts)

    def test_value_without_canonical_form_names_its_path(self) -> None:
        with pytest.raises(ValidationFailedError, match=r"^metadata\.x: value has no canonical"):
            commit_all({"metadata.x": float("nan")}, {"metadata.x": b"\x00" * 16})


class TestLeafInput:
    """The leaf input is JCS of the positions in clear and the commitments in hex."""

    def test_layout(self) -> None:
        got = leaf_input("acme", 7, "evt_1", RECEIVED_AT, {"b": b"\xbb" * 32, "a": b"\xaa" * 32})
        expected = (
            '{"commitments":{"a":"' + "aa" * 32 + '","b":"' + "bb" * 32 + '"},"id":"evt_1",'
            '"received_at":"2026-11-23T10:00:05.123456Z","seq":7,"tenant_id":"acme","v":1}'
        )
        assert got == expected.encode()

    def test_no_fields(self) -> None:
        got = leaf_input("t", 0, "e", RECEIVED_AT, {})
        assert got.startswith(b'{"commitments":{},"id":"e"')

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            pytest.param(("t", -1, "e", RECEIVED_AT, {}), "seq", id="negative-seq"),
            pytest.param(("t", True, "e", RECEIVED_AT, {}), "seq", id="bool-seq"),
            pytest.param(("t", 1.0, "e", RECEIVED_AT, {}), "seq", id="float-seq"),
            pytest.param(("t", 0, "e", "2026-11-23T10:00:05Z", {}), "received_at", id="no-micros"),
            pytest.param(
                ("t", 0, "e", "2026-11-23T10:00:05.123456+00:00", {}), "received_at", id="offset"
            ),
            pytest.param(("t", 0, "e", RECEIVED_AT, {"a": b"\x00" * 31}), "^a:", id="short-hash"),
            pytest.param((None, 0, "e", RECEIVED_AT, {}), "strings", id="tenant-not-str"),
            pytest.param(("t", 0, 5, RECEIVED_AT, {}), "strings", id="event-id-not-str"),
        ],
    )
    def test_rejects(self, args: tuple[Any, ...], message: str) -> None:
        with pytest.raises(ValidationFailedError, match=message):
            leaf_input(*args)

    @pytest.mark.parametrize(
        "change",
        [
            pytest.param({"tenant_id": "other"}, id="tenant"),
            pytest.param({"seq": 42}, id="seq"),
            pytest.param({"id": "evt_other"}, id="event-id"),
            pytest.param({"received_at": "2026-11-23T10:00:05.123457Z"}, id="received-at"),
        ],
    )
    def test_every_position_is_committed(self, change: dict[str, Any]) -> None:
        case = CASES["minimal"]
        moved = {**case, **change}
        assert _leaf(moved, _commitments(case)) != _leaf(case, _commitments(case))


class TestLeafHash:
    """The leaf hash is RFC 9162's SHA-256(0x00 ‖ leaf_input), distinct from an interior node."""

    def test_prefix(self) -> None:
        assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
        assert leaf_hash(b"abc") != hashlib.sha256(b"abc").digest()


class TestRedaction:
    """Erasing a field's value and salt keeps its commitment, the leaf, and every proof."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param({"redacted": True}, True, id="marker"),
            pytest.param(dict(REDACTED), True, id="copy-of-marker"),
            pytest.param({"redacted": 1}, False, id="one-is-not-true"),
            pytest.param({"redacted": "true"}, False, id="string-true"),
            pytest.param({"redacted": True, "x": 1}, False, id="extra-key"),
            pytest.param("redacted", False, id="string"),
            pytest.param(None, False, id="none"),
        ],
    )
    def test_is_redacted(self, value: Any, expected: bool) -> None:
        assert is_redacted(value) is expected

    @pytest.mark.parametrize("path", [pytest.param(p, id=p) for p in CASES["typical"]["salts"]])
    def test_erasing_any_field_keeps_the_leaf(self, path: str) -> None:
        case = CASES["typical"]
        values = field_paths(case["content"])
        values[path] = dict(REDACTED)
        salts = _salts(case)
        del salts[path]
        served = unflatten(values)  # what the API serves after redaction
        rebuilt = recommit(field_paths(served), salts, _commitments(case))
        assert _leaf(case, rebuilt) == case["leaf_input"].encode("utf-8")

    def test_unredacted_events_recommit_to_commit_all(self) -> None:
        case = CASES["typical"]
        values = field_paths(case["content"])
        assert recommit(values, _salts(case), _commitments(case)) == _commitments(case)

    @given(event_contents, st.data())
    def test_any_event_any_field(self, content: dict[str, Any], data: st.DataObject) -> None:
        values = field_paths(content)
        salts = new_salts(values)
        stored = commit_all(values, salts)
        leaf = leaf_input("t", 1, "e", RECEIVED_AT, stored)
        path = data.draw(st.sampled_from(sorted(values)))
        values[path] = dict(REDACTED)
        del salts[path]
        assert leaf_input("t", 1, "e", RECEIVED_AT, recommit(values, salts, stored)) == leaf

    def test_changed_value_changes_the_leaf(self) -> None:
        case = CASES["typical"]
        values = field_paths(case["content"])
        values["actor.email"] = "mallory@example.com"
        rebuilt = recommit(values, _salts(case), _commitments(case))
        assert _leaf(case, rebuilt) != case["leaf_input"].encode("utf-8")

    def test_marker_with_its_salt_kept_is_a_value_not_a_redaction(self) -> None:
        case = CASES["typical"]
        values = field_paths(case["content"])
        values["message"] = dict(REDACTED)
        rebuilt = recommit(values, _salts(case), _commitments(case))
        assert _leaf(case, rebuilt) != case["leaf_input"].encode("utf-8")

    def test_dropped_field_changes_the_leaf(self) -> None:
        case = CASES["typical"]
        values, salts = field_paths(case["content"]), _salts(case)
        del values["message"], salts["message"]
        rebuilt = recommit(values, salts, _commitments(case))
        assert _leaf(case, rebuilt) != case["leaf_input"].encode("utf-8")

    def test_only_redacted_commitments_are_needed(self) -> None:
        case = CASES["typical"]
        values, salts = field_paths(case["content"]), _salts(case)
        values["actor.email"] = dict(REDACTED)
        del salts["actor.email"]
        kept = {"actor.email": _commitments(case)["actor.email"]}
        assert _leaf(case, recommit(values, salts, kept)) == case["leaf_input"].encode("utf-8")

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            pytest.param(lambda v, s: v.update({"extra": 1}), "^extra: no salt", id="added-value"),
            pytest.param(
                lambda v, s: v.update({"extra": dict(REDACTED)}),
                "^extra: no salt",
                id="added-redacted-marker",
            ),
            pytest.param(
                lambda v, s: s.update({"extra": b"\x00" * 16}), "without a value", id="added-salt"
            ),
            pytest.param(lambda v, s: v.pop("message"), "without a value", id="value-gone"),
            pytest.param(lambda v, s: s.pop("message"), "^message: no salt", id="salt-gone"),
        ],
    )
    def test_inconsistent_input_is_caught(self, mutate: Any, message: str) -> None:
        case = CASES["typical"]
        values, salts = field_paths(case["content"]), _salts(case)
        mutate(values, salts)
        with pytest.raises(IntegrityError, match=message):
            recommit(values, salts, _commitments(case))
