"""Kubiya's ``search_text`` equals a brute-force reference on every backend, for text that
spans word boundaries, mixes case, holds punctuation, LIKE's wildcards, JSON's escapes and
non-ASCII letters (whose case and diacritics the ASCII-folding match must keep apart).

The strings are drawn from a small alphabet so that substrings of one event's strings, with
their case flipped, often occur in (and often just miss) the others'.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compat import reference
from trailkeep.api.compat import kubiya
from trailkeep.api.compat._common import native_content
from trailkeep.api.services import Services

_TENANTS = itertools.count()
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
    ],
)
#: Letters, digits and the separators a tokenizer splits at, with escapes and wildcards.
_ALPHABET = ["a", "B", "x", "7", "é", "É", "ß", "K", "İ", " ", "-", "_", ".", "@", "%", '"', "\\"]
_strings = st.lists(st.sampled_from(_ALPHABET), min_size=1, max_size=10).map("".join)
_optional = st.none() | _strings


def _event(message: Any, note: Any, name: Any, target: Any, extra: Any, session: Any) -> dict:
    content: dict[str, Any] = {"action": "invoke"}
    metadata: dict[str, Any] = {}
    if message is not None:
        content["message"] = message
    if note is not None:
        metadata["error_message"] = note
    if name is not None:
        content["actor"] = {"name": name}
    if target is not None:
        content["target"] = {"name": target}
    if extra is not None:
        metadata["extra"] = {"text": extra}
    if session is not None:
        content["session_id"] = session
    if metadata:
        content["metadata"] = metadata
    return content


_events = st.lists(
    st.builds(_event, _optional, _optional, _optional, _optional, _optional, _optional),
    min_size=1,
    max_size=12,
)


def _strings_of(content: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for value in content.values():
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            found.extend(_strings_of(value))
    return found


@st.composite
def _text(draw: st.DrawFn, contents: list[dict[str, Any]]) -> str:
    """A substring of an event's string, its ASCII case flipped at random, or a fresh string."""
    strings = [s for c in contents for s in _strings_of(c) if s]
    if not strings or draw(st.integers(0, 3)) == 0:
        return draw(_strings)
    source = draw(st.sampled_from(strings))
    start = draw(st.integers(0, len(source) - 1))
    end = draw(st.integers(start + 1, len(source)))
    flips = draw(st.lists(st.booleans(), min_size=end - start, max_size=end - start))
    return "".join(
        c.swapcase() if flip and c.isascii() else c
        for c, flip in zip(source[start:end], flips, strict=True)
    )


@PROPERTY
@given(contents=_events, data=st.data())
def test_search_text(services: Services, contents: list[dict[str, Any]], data: Any) -> None:
    tenant = f"text-{next(_TENANTS)}"
    services.tenants.create_tenant(tenant)
    prepared = [services.events.prepare(native_content(c)) for c in contents]
    stored = [a.event for a in services.store.append(tenant, prepared).result()]
    text = data.draw(_text(contents))
    query = kubiya.items_query(tenant, None, None, 1, 50, text)
    got = [kubiya.item(e) for e in services.events.select(tenant, query)]
    assert got == reference.kubiya_items(stored, {}, text=text)
