"""Substring conditions behind the body's byte search (``body_contains``): the same answers as a
brute-force evaluation, on every backend, for text with LIKE's wildcards, escapes, case and
non-ASCII letters, in an Or whose branches share the screen or not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.storage.conftest import BACKENDS
from tests.storage.reference import ref_count, ref_select
from tests.storage.test_store import make_tenant, new_event
from trailkeep.model.event import StoredEvent
from trailkeep.model.signing import sign_content
from trailkeep.query.ast import And, Compare, Contains, Exists, Node, Not, Or, Values
from trailkeep.query.filters import EventQuery
from trailkeep.service.stores import open_store
from trailkeep.storage._compile import STORE_DIALECTS, compile_node
from trailkeep.storage._dialects import PARSED_BODY
from trailkeep.storage.base import Store

_STRINGS = [
    "50%_off",
    "50x_off",
    "500 off",
    "ÉCOLE normale",
    "école",
    'say "hi"',
    "back\\slash",
    "tab\there",
    "Permission Denied",
    "permission denied",
    "PERMISSION",
    "",
]
_TEXTS = ["50%_", "%", "_", "0x", "é", "É", "co", '"hi', "\\s", "\t", "permission d", "DENIED", ""]
_MESSAGE = ("message",)
_NOTE = ("metadata", "note")
_ACTOR = ("actor", "id")  # a column in every backend


@pytest.fixture(scope="module", params=BACKENDS)
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, list[StoredEvent]]]:
    if request.param == "postgres":
        url = request.getfixturevalue("pg_server").create_schema()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('screen') / 'store.db'}"
    store = open_store(url)
    try:
        make_tenant(store)
        events = []
        for i, text in enumerate(_STRINGS):
            other = _STRINGS[(i + 3) % len(_STRINGS)]
            events.append(new_event(message=text, metadata={"note": other}))
            events.append(new_event(actor={"id": text}, metadata={"note": [text, 5]}))
            events.append(new_event(metadata={"note": {"inner": text}}, message=7))
        yield store, [a.event for a in store.append("acme", events).result()]
    finally:
        store.close()


_UNDOCUMENTED = (("signature", "sig"), ("signature", "public_key"), ("timestamp",))


def _nodes(text: str) -> list[Node]:
    return [
        Contains((_MESSAGE,), text),
        Contains((_MESSAGE, _NOTE, _ACTOR, ("id",)), text),
        Contains((_NOTE,), text, ignore_case=False),
        Or((Contains((_MESSAGE,), text), Contains((_NOTE,), text))),
        Or(
            (
                Contains((_ACTOR, _MESSAGE), text),
                And((Contains((_NOTE,), text), Not(Compare(_MESSAGE, ">", "")))),
                Or((Contains((("id",),), text), Values(("action",), ("test.action",)))),
                Or((Contains((_NOTE,), text), Contains((_MESSAGE,), text, ignore_case=False))),
            )
        ),
        # Two texts shared by branches, one of which may have no screen: no branch is lost.
        Or(
            (
                Contains((_MESSAGE,), text),
                Contains((_MESSAGE,), "zz"),
                Contains((_NOTE,), text),
                And((Contains((_NOTE,), "zz"), Exists(_MESSAGE))),
            )
        ),
    ]


@pytest.mark.parametrize("text", _TEXTS)
def test_equal_to_reference(filled: tuple[Store, list[StoredEvent]], text: str) -> None:
    store, events = filled
    for node in _nodes(text):
        query = EventQuery(node, limit=1000)
        got = [e.id for e in store.select("acme", query)]
        assert got == [e.id for e in ref_select(events, query)], node
        assert store.count("acme", query) == ref_count(events, query), node


def test_shared_screen() -> None:
    """Branches needing the same text share one byte search; text LIKE could misread or
    orjson escapes has none."""
    node = Or(
        (Contains((_MESSAGE,), "abc"), And((Contains((_NOTE,), "abc"), Values(_ACTOR, ("x",)))))
    )
    assert compile_node(node, "sqlite").sql.count("LIKE") == 1
    for text in ('a"b', "a\\b", "a\nb", ""):
        assert "LIKE" not in compile_node(Contains((_MESSAGE,), text), "sqlite").sql
    assert "LIKE" not in compile_node(Contains((("id",),), "abc"), "sqlite").sql


def test_postgres_parses_behind_the_screen() -> None:
    """On PostgreSQL the conditions behind the screen read a body parsed in a subquery that
    only rows passing the screen reach, not the statement's per-row parse (``d.doc``)."""
    dialect = STORE_DIALECTS["postgres"]
    node = Or(
        (
            Contains((_MESSAGE, ("id",)), "abc"),
            And((Contains((_NOTE,), "abc"), Values(_ACTOR, ("x",)))),
        )
    )
    sql = compile_node(node, dialect).sql
    assert sql.count("ILIKE") == 2  # the two columns of the search document
    assert PARSED_BODY not in sql
    assert "AND (SELECT" in sql
    assert dialect.events_from(sql) == "events"
    # Fields the search document holds as lines: its columns, half the bytes of the body.
    assert "search_fields" in sql
    assert "search_fields" in compile_node(Contains((_MESSAGE, _NOTE), "abc"), dialect).sql
    for field in _UNDOCUMENTED:
        assert "search_fields" not in compile_node(Contains((field,), "abc"), dialect).sql
        mixed = Or((Contains((_MESSAGE,), "abc"), Contains((field,), "abc")))
        assert "search_fields" not in compile_node(mixed, dialect).sql
    # Case kept: the bytes themselves; text the screen cannot see through: no screen.
    only_body = Contains((("signature", "sig"),), "abc", ignore_case=False)
    assert "body LIKE" in compile_node(only_body, dialect).sql
    for text in ('a"b', "a\\b", "a\nb", "", "\ud800"):
        assert dialect.body_contains(text, True) is None
        assert "LIKE" not in compile_node(Contains((_MESSAGE,), text), dialect).sql


def test_strings_the_search_document_lacks(store: Store) -> None:
    """A substring of the signature or the timestamp, which the search document does not hold,
    is found on every backend (their screen reads the body, not the document)."""
    make_tenant(store)
    content = {
        "action": "test.action",
        "message": "m",
        "outcome": "success",
        "timestamp": "2026-05-06T07:08:09.000000Z",
    }
    key = Ed25519PrivateKey.generate()
    signed = new_event(**content, signature=sign_content(content, key))
    events = [a.event for a in store.append("acme", [signed, new_event()]).result()]
    stored = events[0].content
    for field in _UNDOCUMENTED:
        value = stored
        for part in field:
            value = value[part]
        for text in (value[5:13], value[5:13].swapcase()):
            for node in (
                Contains((field,), text),
                Or((Contains((_MESSAGE,), text), Contains((field,), text))),
            ):
                query = EventQuery(node, limit=10)
                got = [e.id for e in store.select("acme", query)]
                assert got == [e.id for e in ref_select(events, query)] == [events[0].id], node


@pytest.mark.postgres
def test_postgres_row_without_search_document(pg_url: str) -> None:
    """A row whose search document columns are empty (none is written so) is still tested
    exactly, not dropped by the screen that reads them."""
    import psycopg

    store = open_store(pg_url)
    try:
        make_tenant(store)
        events = [
            a.event
            for a in store.append("acme", [new_event(message="Needle here"), new_event()]).result()
        ]
        with psycopg.connect(pg_url) as conn:
            conn.execute(
                "UPDATE events SET search_message = NULL, search_fields = NULL WHERE id = %s",
                (events[0].id,),
            )
        node = Contains((_MESSAGE, _NOTE), "needle")
        assert "search_fields" in compile_node(node, STORE_DIALECTS["postgres"]).sql
        query = EventQuery(node, limit=10)
        assert [e.id for e in store.select("acme", query)] == [events[0].id]
    finally:
        store.close()
