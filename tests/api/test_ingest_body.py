"""The ingest bodies' one-pass msgspec decoder agrees with the pydantic models it mirrors, and
``Prefer: return=minimal`` answers with where each event landed."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import orjson
import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import Keys
from tests.model.strategies import event_contents as contents_strategy
from tests.model.strategies import json_values
from trailkeep.api import ingest_body
from trailkeep.api.body import OFFLOAD_BYTES
from trailkeep.api.ingest_body import STRUCTS, event_content, event_contents
from trailkeep.api.routes.events import wants_minimal
from trailkeep.api.schemas import Actor, BatchIn, EventIn, Signature, Source, Target

_MIRRORS = {
    ingest_body._Actor: Actor,
    ingest_body._Target: Target,
    ingest_body._Source: Source,
    ingest_body._Signature: Signature,
    **STRUCTS,
}


def _referee(body: bytes, *, batch: bool) -> list[dict[str, Any]] | str:
    """What the pydantic models make of ``body``: the contents, or the error locations."""
    from trailkeep.api.body import validate_body

    try:
        if batch:
            return [event_content(e) for e in validate_body(body, BatchIn).events]
        return [event_content(validate_body(body, EventIn))]
    except RequestValidationError as exc:
        return repr(sorted(str(e["loc"]) for e in exc.errors()))


def _keys_in_order(value: Any) -> Any:
    """``value`` with every dict as its list of items, so key order counts in comparisons."""
    if isinstance(value, dict):
        return [(k, _keys_in_order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_keys_in_order(v) for v in value]
    return value


_short = st.none() | st.text(max_size=6)


def _sub(fields: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(fields, _short))


#: Events the schema accepts, nulls anywhere they may be (each field's own bounds aside).
_valid_events = st.fixed_dictionaries(
    {"action": st.text(min_size=1, max_size=6)},
    optional={
        "timestamp": _short,
        "category": _short,
        "outcome": st.sampled_from(["success", "failure", "unknown", None]),
        "actor": st.none() | _sub(("id", "type", "name", "email", "role")),
        "target": st.none() | _sub(("id", "type", "name", "org_id")),
        "source": st.none() | _sub(("ip", "user_agent", "client_id", "service")),
        "session_id": _short,
        "message": _short,
        "old": json_values,
        "new": json_values,
        "metadata": st.none() | st.dictionaries(st.text(max_size=3), json_values, max_size=4),
        "idempotency_key": st.none() | st.text(min_size=1, max_size=4),
        "signature": st.none()
        | st.fixed_dictionaries(
            {"alg": st.just("ed25519"), "public_key": st.text(max_size=4), "sig": st.text()}
        ),
    },
)

_tricky_fields = st.fixed_dictionaries(
    {},
    optional={
        "action": st.one_of(st.text(max_size=3), st.integers(), st.none(), st.just("x" * 513)),
        "outcome": st.sampled_from(["success", "failure", "unknown", "maybe", None, 1]),
        "actor": st.one_of(
            st.none(),
            st.dictionaries(st.sampled_from(["id", "email", "colour"]), json_values, max_size=3),
        ),
        "metadata": st.one_of(st.none(), st.dictionaries(st.text(max_size=3), json_values)),
        "old": json_values,
        "idempotency_key": st.one_of(st.text(max_size=3), st.none()),
        "signature": st.fixed_dictionaries(
            {"alg": st.sampled_from(["ed25519", "rsa"]), "sig": st.text(max_size=3)},
            optional={"public_key": st.text(max_size=3)},
        ),
        "seq": st.integers(),
    },
)


def _encode(value: Any) -> bytes | None:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # a big int or a lone surrogate: sent as the stdlib writes it
        import json

        try:
            return json.dumps(value).encode()
        except (ValueError, UnicodeEncodeError):
            return None


class TestAgreesWithPydantic:
    """Any body gets from the decoder exactly what the pydantic path gives, or its error."""

    @settings(max_examples=300, deadline=None)
    @given(
        st.one_of(_valid_events, _valid_events, contents_strategy, _tricky_fields), st.booleans()
    )
    @example({"action": "a", "metadata": {"k": None, "n": 1}, "actor": {"id": None}}, True)
    @example({"action": "a", "metadata": {"n": 2**64}, "old": None}, False)
    @example({"action": "", "signature": {"alg": "rsa"}}, False)
    def test_same_contents_or_same_error(self, event: dict[str, Any], batch: bool) -> None:
        body = _encode({"events": [event, event]} if batch else event)
        if body is None:
            return
        try:
            got: list[dict[str, Any]] | str = event_contents(body, batch=batch)
        except RequestValidationError as exc:
            got = repr(sorted(str(e["loc"]) for e in exc.errors()))
        assert _keys_in_order(got) == _keys_in_order(_referee(body, batch=batch))

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(b'\xef\xbb\xbf{"action": "a"}', id="utf8-bom"),
            pytest.param(b'{"action": "a", "old": NaN}', id="nan"),
            pytest.param('{"action": "ä"}'.encode("utf-16"), id="utf-16"),
            pytest.param(b'{"action": "a", "action": "b"}', id="duplicate-key"),
            pytest.param(b'{"action": "a", "metadata": {"n": 18446744073709551616}}', id="big-int"),
            pytest.param(b'{"action": "a", "old": "\\ud800"}', id="lone-surrogate"),
        ],
    )
    def test_corners_where_msgspec_defers(self, body: bytes) -> None:
        assert event_contents(body, batch=False) == _referee(body, batch=False)

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param(None, id="valid"),
            pytest.param({"message": "no action"}, id="missing-action"),
            pytest.param({"action": "a", "colour": 1}, id="unknown-field"),
        ],
    )
    def test_large_batches_event_by_event(self, bad: dict[str, Any] | None) -> None:
        """Past the offload size the events are decoded one by one, with the same result."""
        event = {"action": "a", "metadata": {f"k{i}": None if i % 7 else i for i in range(200)}}
        events: list[dict[str, Any]] = [event] * 150 + ([bad] if bad else [])
        body = orjson.dumps({"events": events})
        assert len(body) > OFFLOAD_BYTES
        try:
            got: list[dict[str, Any]] | str = event_contents(body, batch=True)
        except RequestValidationError as exc:
            got = repr(sorted(str(e["loc"]) for e in exc.errors()))
        assert _keys_in_order(got) == _keys_in_order(_referee(body, batch=True))
        if bad is None:
            assert ingest_body._fast(body, batch=True) is not None

    def test_fast_path_taken_for_plain_bodies(self) -> None:
        body = b'{"events": [{"action": "a", "actor": {"id": "u", "name": null}}]}'
        assert ingest_body._fast(body, batch=True) == [{"action": "a", "actor": {"id": "u"}}]


class TestStructsMirrorModels:
    """Each struct has its model's fields, in its order, with its bounds."""

    @pytest.mark.parametrize("struct", list(_MIRRORS), ids=lambda s: s.__name__)
    def test_same_fields_in_order(self, struct: type[msgspec.Struct]) -> None:
        assert list(struct.__struct_fields__) == list(_MIRRORS[struct].model_fields)

    @pytest.mark.parametrize("struct", list(_MIRRORS), ids=lambda s: s.__name__)
    def test_same_string_bounds(self, struct: type[msgspec.Struct]) -> None:
        model = _MIRRORS[struct]
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        for field in info.fields:
            want = model.model_fields[field.name]
            limits = {type(m).__name__: m for m in want.metadata}
            strings = [t for t in _flatten(field.type) if isinstance(t, msgspec.inspect.StrType)]
            for got in strings:
                max_len = getattr(limits.get("MaxLen"), "max_length", None)
                min_len = getattr(limits.get("MinLen"), "min_length", None)
                assert got.max_length == max_len, field.name
                assert (got.min_length or None) == min_len, field.name
            assert field.required == want.is_required(), field.name


def _flatten(t: msgspec.inspect.Type) -> list[msgspec.inspect.Type]:
    if isinstance(t, msgspec.inspect.UnionType):
        return [x for u in t.types for x in _flatten(u)]
    return [t]


class TestPreferHeader:
    """RFC 7240 parsing: the token and value case-insensitive, among other preferences."""

    @pytest.mark.parametrize(
        ("header", "minimal"),
        [
            pytest.param(None, False, id="absent"),
            pytest.param("return=minimal", True, id="plain"),
            pytest.param("Return=Minimal", True, id="case"),
            pytest.param("respond-async, return=minimal; foo=bar", True, id="among-others"),
            pytest.param('return="minimal"', True, id="quoted"),
            pytest.param("return=representation", False, id="representation"),
            pytest.param("minimal", False, id="bare-value"),
        ],
    )
    def test_parsed(self, header: str | None, minimal: bool) -> None:
        assert wants_minimal(header) is minimal


@pytest.mark.asyncio
class TestReturnMinimal:
    """``Prefer: return=minimal`` answers id, seq, hash and received_at; the event is stored
    whole all the same."""

    async def test_single(self, client: httpx.AsyncClient, acme: Keys) -> None:
        headers = {**acme.auth("writer"), "Prefer": "return=minimal"}
        resp = await client.post(
            "/v1/events", json={"action": "a", "message": "m"}, headers=headers
        )
        assert resp.status_code == 201, resp.text
        assert resp.headers["Preference-Applied"] == "return=minimal"
        ref = resp.json()
        assert list(ref) == ["id", "seq", "hash", "received_at"]
        got = (await client.get(f"/v1/events/{ref['id']}", headers=acme.auth("reader"))).json()
        assert got["message"] == "m"
        assert (got["seq"], got["hash"], got["received_at"]) == (
            ref["seq"],
            ref["hash"],
            ref["received_at"],
        )

    async def test_batch_and_replay(self, client: httpx.AsyncClient, acme: Keys) -> None:
        headers = {**acme.auth("writer"), "Prefer": "return=minimal", "Idempotency-Key": "k"}
        body = {"events": [{"action": "a"}, {"action": "b"}]}
        first = await client.post("/v1/events/batch", json=body, headers=headers)
        again = await client.post("/v1/events/batch", json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        refs = first.json()["events"]
        assert [r["seq"] for r in refs] == [0, 1]
        assert all(set(r) == {"id", "seq", "hash", "received_at"} for r in refs)
        assert again.json() == first.json()

    async def test_without_preference_full_events(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        resp = await client.post("/v1/events", json={"action": "a"}, headers=acme.auth("writer"))
        assert "Preference-Applied" not in resp.headers
        assert resp.json()["action"] == "a"

    async def test_documented(self, client: httpx.AsyncClient) -> None:
        spec = (await client.get("/openapi.json")).json()
        for path in ("/v1/events", "/v1/events/batch"):
            params = spec["paths"][path]["post"]["parameters"]
            assert "Prefer" in [p["name"] for p in params]
        assert "EventRef" in spec["components"]["schemas"]
