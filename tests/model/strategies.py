"""Hypothesis strategies for the model's tests: JSON values, event content, times and time text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "aware_datetimes",
    "event_contents",
    "fast_json_values",
    "json_values",
    "time_texts",
]

MAX_SAFE = 2**53 - 1

# Characters where encoders tend to disagree: every escape JCS uses, the ones it must not escape
# (DEL, "/", U+2028/9), and keys whose UTF-16 order differs from code point order (U+E000..FFFF
# against anything above U+FFFF, as in RFC 8785 §3.2.3's example).
_TRICKY = '\x00\x01\x08\t\n\x0b\x0c\r\x1f"\\/\x7f\x80\u00f6\u20ac\u2028\u2029\ue000\ufb33\uffff'
_ASTRAL = "\U00010000\U0001f600\U0010ffff"

_tricky_text = st.text(st.sampled_from(_TRICKY + _ASTRAL + "a1 "), max_size=8)
_surrogate_text = st.text(st.characters() | st.characters(categories=["Cs"]), min_size=1)
texts = st.one_of(st.text(), st.text(), _tricky_text, _tricky_text, _surrogate_text)
bmp_keys = st.one_of(
    st.text(st.characters(max_codepoint=0xFFFF)), st.text(st.sampled_from(_TRICKY))
)

_ints = st.one_of(
    st.integers(-MAX_SAFE, MAX_SAFE),
    st.sampled_from([MAX_SAFE, -MAX_SAFE, MAX_SAFE + 1, -MAX_SAFE - 1, 2**63, 2**64, -(2**64)]),
    st.integers(),
)
_scalars = st.one_of(st.none(), st.booleans(), _ints, st.floats(), texts)

#: Any JSON-shaped value, including what JCS refuses (NaN, big ints, lone surrogates).
json_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)

_fast_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-MAX_SAFE, MAX_SAFE), st.text(), _tricky_text
)
#: Values the fast path takes: no floats, safe ints, keys in the BMP (no lone surrogates).
fast_json_values: st.SearchStrategy[Any] = st.recursive(
    _fast_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(bmp_keys.filter(lambda k: not _has_surrogate(k)), inner, max_size=4)
    ),
    max_leaves=12,
)


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


_names = st.text(min_size=1, max_size=12).filter(lambda s: "." not in s and not _has_surrogate(s))
_clean_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-MAX_SAFE, MAX_SAFE), st.text(max_size=20)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=3),
    max_leaves=6,
)
_objects = st.dictionaries(_names, _clean_values, max_size=5)
#: Client content of an event: the schema's fields, each maybe absent or null.
event_contents: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"action": st.text(min_size=1, max_size=20)},
    optional={
        "timestamp": st.just("2026-11-23T10:00:05.123456Z"),
        "category": st.none() | st.text(max_size=10),
        "outcome": st.sampled_from(["success", "failure", "unknown"]),
        "actor": st.none() | _objects | st.text(max_size=10),
        "target": st.none() | _objects,
        "source": st.none() | _objects,
        "metadata": st.none() | _objects,
        "message": st.none() | st.text(max_size=40),
        "old": _clean_values,
        "new": _clean_values,
        "session_id": st.text(max_size=10),
        "signature": st.fixed_dictionaries({"alg": st.just("Ed25519"), "sig": st.text()}),
    },
)

_offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))


def _utc_representable(dt: datetime) -> bool:
    try:
        dt.astimezone(UTC)
    except OverflowError:
        return False
    return True


#: Any aware datetime that has a UTC form, in UTC or a fixed offset.
aware_datetimes: st.SearchStrategy[datetime] = st.datetimes(
    timezones=st.just(UTC) | _offsets
).filter(_utc_representable)

_time_tokens = st.sampled_from(
    [
        "now",
        "today",
        "yesterday",
        "tomorrow",
        "ago",
        "-",
        "+",
        " ",
        ":",
        ".",
        ",",
        "T",
        "Z",
        "utc",
        "d",
        "h",
        "m",
        "mo",
        "min",
        "s",
        "w",
        "y",
        "week",
        "0",
        "1",
        "9",
        "12",
        "60",
        "99999",
        "2026",
        "-11",
        "-23",
        "9999-12-31",
        "0001-01-01",
        "23:59:60",
        "+24:00",
        "1763892000",
        "99999999999",
        "\u0663",
        "\u212a",
        "\u0130",
        "\x00",
    ]
)
#: Text aimed at the grammar (tokens glued together) and text that is anything at all.
time_texts: st.SearchStrategy[str] = st.one_of(
    st.lists(_time_tokens, max_size=8).map("".join),
    st.text(),
    st.text(st.sampled_from("0123456789-:T .Z+")),
)
