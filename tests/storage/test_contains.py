"""``Contains`` over columns and JSON values: strings with escapes, case and non-ASCII letters
match exactly as the brute-force reference says, on every backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.storage.reference import ref_count, ref_select
from tests.storage.test_store import make_tenant, new_event
from trailkeep.model.event import StoredEvent
from trailkeep.query.ast import Contains, Each, Not
from trailkeep.query.filters import EventQuery
from trailkeep.service.stores import open_store
from trailkeep.storage.base import Store

_STRINGS = [
    'say "Hi"',
    "back\\slash",
    "line\nbreak\ttab",
    "Permission DENIED",
    "ÉCOLE école",
    "emoji 😀 here",
    "\u2028sep",
    "plain",
]


@pytest.fixture
def filled(store_url: str) -> Iterator[tuple[Store, list[StoredEvent]]]:
    store = open_store(store_url, sqlite_synchronous="NORMAL")
    try:
        make_tenant(store)
        events = [
            new_event(message=text, metadata={"note": _STRINGS[-1 - i], "tags": [text]})
            for i, text in enumerate(_STRINGS)
        ]
        events.append(new_event(metadata={"n": 5, "note": None}))
        yield store, [a.event for a in store.append("acme", events).result()]
    finally:
        store.close()


_FIELDS = (("message",), ("metadata", "note"), ("action",))
_TEXTS = [
    '"hi"',
    "hi",
    'y "h',
    "\\s",
    "k\\",
    "\n",
    "e\nb",
    "permission denied",
    "PERMISSION",
    "école",
    "École",
    "😀",
    "\u2028",
    "",
    "n",
    "5",
    "nothing",
]


class TestContains:
    """Every needle, case-folded or not, over columns and JSON values, as the reference."""

    @pytest.mark.parametrize(
        "ignore_case", [pytest.param(True, id="fold"), pytest.param(False, id="exact")]
    )
    @pytest.mark.parametrize("text", [pytest.param(t, id=repr(t)) for t in _TEXTS])
    def test_against_reference(
        self, filled: tuple[Store, list[StoredEvent]], text: str, ignore_case: bool
    ) -> None:
        store, events = filled
        for where in (
            Contains(_FIELDS, text, ignore_case),
            Not(Contains(_FIELDS, text, ignore_case)),
            Each(("metadata", "tags"), Contains(((),), text, ignore_case)),
        ):
            query = EventQuery(where)
            assert [e.id for e in store.select("acme", query)] == [
                e.id for e in ref_select(events, query)
            ], where
            assert store.count("acme", query) == ref_count(events, query)
