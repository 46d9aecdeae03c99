"""Canonical JSON: byte-equal to ``rfc8785`` (the reference) on every path, fast or not."""

from __future__ import annotations

import enum
import math
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from tests.model.strategies import fast_json_values, json_values

from trailkeep.errors import ValidationFailedError
from trailkeep.model.canonical import MAX_SAFE_INTEGER, jcs


def _double(bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(bits))[0]
    return value


class TestJcsRfcVectors:
    """jcs writes the examples of RFC 8785 byte for byte."""

    @pytest.mark.parametrize(
        ("bits", "expected"),
        [
            pytest.param("0000000000000000", b"0", id="zero"),
            pytest.param("8000000000000000", b"0", id="minus-zero"),
            pytest.param("0000000000000001", b"5e-324", id="min-subnormal"),
            pytest.param("8000000000000001", b"-5e-324", id="neg-min-subnormal"),
            pytest.param("7fefffffffffffff", b"1.7976931348623157e+308", id="max"),
            pytest.param("ffefffffffffffff", b"-1.7976931348623157e+308", id="neg-max"),
            pytest.param("4340000000000000", b"9007199254740992", id="2^53"),
            pytest.param("c340000000000000", b"-9007199254740992", id="neg-2^53"),
            pytest.param("4430000000000000", b"295147905179352830000", id="2^68"),
            pytest.param("44b52d02c7e14af5", b"9.999999999999997e+22", id="below-1e23"),
            pytest.param("44b52d02c7e14af6", b"1e+23", id="1e23"),
            pytest.param("44b52d02c7e14af7", b"1.0000000000000001e+23", id="above-1e23"),
            pytest.param("444b1ae4d6e2ef4e", b"999999999999999700000", id="below-1e21-a"),
            pytest.param("444b1ae4d6e2ef4f", b"999999999999999900000", id="below-1e21-b"),
            pytest.param("444b1ae4d6e2ef50", b"1e+21", id="1e21"),
            pytest.param("3eb0c6f7a0b5ed8c", b"9.999999999999997e-7", id="below-1e-6"),
            pytest.param("3eb0c6f7a0b5ed8d", b"0.000001", id="1e-6"),
            pytest.param("41b3de4355555553", b"333333333.3333332", id="third-a"),
            pytest.param("41b3de4355555554", b"333333333.33333325", id="third-b"),
            pytest.param("41b3de4355555555", b"333333333.3333333", id="third-c"),
            pytest.param("41b3de4355555556", b"333333333.3333334", id="third-d"),
            pytest.param("41b3de4355555557", b"333333333.33333343", id="third-e"),
            pytest.param("becbf647612f3696", b"-0.0000033333333333333333", id="small-negative"),
            pytest.param("43143ff3c1cb0959", b"1424953923781206.2", id="large-fraction"),
        ],
    )
    def test_numbers(self, bits: str, expected: bytes) -> None:
        assert jcs(_double(bits)) == expected

    def test_section_3_2_2_example(self) -> None:
        value = {
            "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
            "literals": [None, True, False],
        }
        expected = (
            '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
            '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
        )
        assert jcs(value) == expected.encode()

    def test_section_3_2_3_key_order_is_utf16(self) -> None:
        value = {
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\U0001f600": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis",
        }
        order = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
        expected = "{" + ",".join(f'"{k}":"{value[k]}"' for k in order) + "}"
        assert jcs(value) == expected.replace("\r", "\\r").encode()


class TestJcsStrings:
    """jcs escapes exactly what JCS escapes, and writes everything else as raw UTF-8."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param('"', b'"\\""', id="quote"),
            pytest.param("\\", b'"\\\\"', id="backslash"),
            pytest.param("\b\t\n\f\r", b'"\\b\\t\\n\\f\\r"', id="short-escapes"),
            pytest.param(
                "\x00\x01\x0b\x1f", b'"\\u0000\\u0001\\u000b\\u001f"', id="u-escapes-lower"
            ),
            pytest.param("/", b'"/"', id="solidus-not-escaped"),
            pytest.param("\x7f", b'"\x7f"', id="del-not-escaped"),
            pytest.param("\u2028\u2029", '"\u2028\u2029"'.encode(), id="line-separators-raw"),
            pytest.param("<>&'", b'"<>&\'"', id="html-chars-raw"),
            pytest.param("\U0001f600", '"\U0001f600"'.encode(), id="astral-raw"),
        ],
    )
    def test_escapes(self, text: str, expected: bytes) -> None:
        assert jcs(text) == expected
        assert jcs({text: text}) == b"{" + expected + b":" + expected + b"}"

    def test_every_code_point_matches_reference(self) -> None:
        # Escaping is per character, so checking the code points in runs covers each one.
        points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
        for start in range(0, len(points), 4096):
            run = "".join(map(chr, points[start : start + 4096]))
            assert jcs(run) == rfc8785.dumps(run), f"run starting at U+{points[start]:04X}"


class _Color(enum.IntEnum):
    RED = 1


class _Tagged(dict[str, Any]):
    pass


class TestJcsMatchesReference:
    """jcs(v) equals rfc8785.dumps(v) for any value, or both refuse it."""

    @given(json_values)
    def test_any_json_value(self, value: Any) -> None:
        try:
            expected = rfc8785.dumps(value)
        except (rfc8785.CanonicalizationError, UnicodeError, RecursionError):
            with pytest.raises(ValidationFailedError):
                jcs(value)
        else:
            assert jcs(value) == expected

    @given(fast_json_values)
    def test_fast_path_shapes(self, value: Any) -> None:
        assert jcs(value) == rfc8785.dumps(value)

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(1.0, id="integral-float"),
            pytest.param([1, 2.5, "x"], id="float-in-list"),
            pytest.param((1, "a"), id="tuple"),
            pytest.param(_Color.RED, id="int-enum"),
            pytest.param(_Tagged(b=1, a=2), id="dict-subclass"),
            pytest.param(MAX_SAFE_INTEGER, id="max-safe-int"),
            pytest.param(-MAX_SAFE_INTEGER, id="min-safe-int"),
            pytest.param({"\ue000": 1, "\U00010000": 2}, id="astral-key-sorts-first"),
            pytest.param([[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]], id="nested-lists"),
            pytest.param(True, id="true-not-one"),
        ],
    )
    def test_values_off_the_fast_path(self, value: Any) -> None:
        assert jcs(value) == rfc8785.dumps(value)

    def test_nesting_beyond_the_fast_depth(self) -> None:
        value: Any = "leaf"
        for _ in range(100):
            value = {"k": [value]}
        assert jcs(value) == rfc8785.dumps(value)


class TestJcsRejects:
    """Values with no JCS form raise ValidationFailedError saying so, never another error."""

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(math.nan, id="nan"),
            pytest.param(math.inf, id="infinity"),
            pytest.param([-math.inf], id="neg-infinity-in-list"),
            pytest.param(MAX_SAFE_INTEGER + 1, id="int-above-2^53"),
            pytest.param({"n": -MAX_SAFE_INTEGER - 1}, id="int-below-minus-2^53"),
            pytest.param(2**64, id="int-beyond-64-bits"),
            pytest.param({1: "x"}, id="int-key"),
            pytest.param("\ud800", id="lone-surrogate"),
            pytest.param({"\udfff": 1, "a": 2}, id="lone-surrogate-key"),
            pytest.param({"x"}, id="set"),
            pytest.param(b"bytes", id="bytes"),
            pytest.param(object(), id="object"),
        ],
    )
    def test_refused(self, value: Any) -> None:
        with pytest.raises(ValidationFailedError, match="no canonical JSON form"):
            jcs(value)

    def test_too_deep(self) -> None:
        value: Any = []
        for _ in range(5000):
            value = [value]
        with pytest.raises(ValidationFailedError, match="nested too deeply"):
            jcs(value)
