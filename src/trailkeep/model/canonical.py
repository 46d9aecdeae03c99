"""RFC 8785 (JCS) canonical JSON: the only way trailkeep turns a value into bytes it hashes.

``rfc8785`` is the reference encoder, but it is pure Python and sits on the ingest hot path
(once per field of every event). For the values that make up nearly every event — strings,
safe integers, booleans, null, and arrays and objects of those whose keys are in the Basic
Multilingual Plane — orjson's compact, key-sorted output is byte-identical to JCS, so those
take a C fast path. Everything else (floats, keys outside the BMP, big integers, subclasses,
anything orjson refuses) goes to ``rfc8785`` unchanged.

Why the fast path is exact, checked against ``rfc8785`` for every code point and by a property
test (``tests/model/test_canonical.py``):

* Strings: both escape exactly ``"``, ``\\`` and U+0000..U+001F (``\\b \\t \\n \\f \\r``, else
  ``\\u00xx`` in lowercase hex) and write everything else — ``/``, DEL, U+2028/U+2029, any
  non-ASCII — as raw UTF-8. Both reject lone surrogates; orjson's refusal sends the value to
  ``rfc8785``, which raises the error we report.
* Key order: JCS sorts by UTF-16 code units, orjson by code point. The two orders agree unless a
  key holds a character above U+FFFF (its surrogate pair sorts below U+E000..U+FFFF in UTF-16),
  so such keys are left to ``rfc8785``.
* Integers: both print decimal digits; the fast path only admits the range ``rfc8785`` accepts
  (±(2**53 - 1)); anything larger is rejected by ``rfc8785`` with its own message.
* Floats are never on the fast path: orjson writes ``1.0`` where JCS writes ``1``.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
import rfc8785

from trailkeep.errors import ValidationFailedError

__all__ = ["MAX_SAFE_INTEGER", "jcs"]

#: The largest integer an IEEE 754 double holds exactly; JCS (and ``rfc8785``) refuse beyond it.
MAX_SAFE_INTEGER: Final = 2**53 - 1

# Deeper values go to ``rfc8785`` (and its error, if any): well under orjson's own limit of 255
# levels and Python's recursion limit, so the check itself never recurses too far.
_MAX_FAST_DEPTH: Final = 64
_BMP_MAX: Final = "\uffff"
_SORT_KEYS: Final = orjson.OPT_SORT_KEYS


def jcs(value: Any) -> bytes:
    """Encode ``value`` as RFC 8785 canonical JSON.

    Args:
        value: a JSON value built from ``dict`` (string keys), ``list``/``tuple``, ``str``,
            ``int``, ``float``, ``bool`` and ``None``.

    Returns:
        The canonical UTF-8 bytes, identical to ``rfc8785.dumps(value)``.

    Raises:
        ValidationFailedError: the value has no JCS form — NaN or infinity, an integer beyond
            ±(2**53 - 1), a lone surrogate, a non-string key, an unsupported type, or nesting
            too deep to encode.
    """
    kind = type(value)
    if kind is str:  # most field values: orjson escapes strings exactly as JCS does
        try:
            return orjson.dumps(value)
        except orjson.JSONEncodeError:
            return _reference(value)
    if _fast_ok(value, 0):
        try:
            return orjson.dumps(value, option=_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate: let the reference encoder name the problem
    return _reference(value)


def _fast_ok(value: Any, depth: int) -> bool:
    """Whether orjson writes ``value`` exactly as JCS does (see the module docstring)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        safe: bool = -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
        return safe
    if depth >= _MAX_FAST_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or max(key, default="") <= _BMP_MAX):
                return False
            if not _fast_ok(item, depth + 1):
                return False
        return True
    if kind is list:
        return all(_fast_ok(item, depth + 1) for item in value)
    return False


def _reference(value: Any) -> bytes:
    """``rfc8785.dumps``, with its failures turned into our own error."""
    try:
        encoded: bytes = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise ValidationFailedError(f"value has no canonical JSON form: {exc}") from exc
    except UnicodeError as exc:  # a lone surrogate in an object key, met while sorting
        raise ValidationFailedError(
            "value has no canonical JSON form: a string holds a lone surrogate"
        ) from exc
    except RecursionError as exc:
        raise ValidationFailedError("value has no canonical JSON form: nested too deeply") from exc
    return encoded
