"""A whole-tenant bundle's fast path: ``_fastleaf.bundle_events`` and the chunked tree fold.

The C part may only ever answer with the leaf the exact path computes, and must decline every
line that is not the common case; whatever it declines, or whatever was tampered with, the
verification fails as it does without it, naming the seq.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.service.test_bundles import TENANT, build, key, seed
from trailkeep.api.services import Services
from trailkeep.client import bundle as bundle_module
from trailkeep.client.bundle import verify_bundle
from trailkeep.client.verify import _leaf
from trailkeep.errors import IntegrityError
from trailkeep.merkle import RFC9162, CompactRange
from trailkeep.model import _native
from trailkeep.service.selection import Selection

native = pytest.mark.skipif(_native.bundle_events is None, reason="the C part is not built")

#: Events of every shape the C part takes (ASCII paths; str, bool and safe int values in
#: top-level fields and committed objects) and some it must decline.
CONTENTS: list[dict[str, Any]] = [
    {"action": "user.login", "actor": {"id": "u-1", "email": "a@x.io"}, "outcome": "success"},
    {"action": "doc.edit", "actor": {"id": "u-1", "type": "user"}, "target": {"id": "d-1"},
     "metadata": {"bytes": 123, "ok": True, "region": "eu"}, "message": 'say "hi"\\ok'},
    {"action": "doc.view", "source": {"ip": "10.0.0.1", "user_agent": "curl"},
     "session_id": "s-1", "request_id": "r-1", "timestamp": "2026-01-04T00:00:00Z"},
    {"action": "tool.call", "metadata": {"n": 2**53 - 1, "neg": -(2**53 - 1), "f": False}},
    # declined by the C part, taken by the Python paths
    {"action": "doc.view", "metadata": {"k": 1.5, "nested": {"a": [1, 2]}}},
    {"action": "user.login", "actor": {"id": "ünï-2", "name": "Zoë 🚀"}},
    {"action": "doc.view", "metadata": {"😀": "astral", "\uff01": "bmp"}},
    {"action": "user.login", "actor": "a plain-string actor"},
]  # fmt: skip
#: Seqs of CONTENTS the C part must take whole.
COMMON = [0, 1, 2, 3, 5]


@pytest.fixture
def seeded(services: Services) -> Services:
    seed(services, CONTENTS)
    return services


def _native_leaves(lines: list[bytes], start: int) -> list[bytes | None]:
    assert _native.bundle_events is not None
    return _native.bundle_events(lines, start, TENANT, '"acme"', orjson.loads)


def _exact(line: bytes) -> bytes | None:
    """The exact path's leaf of an event line, if it is one whose hash it matches."""
    record = orjson.loads(line)
    try:
        leaf = _leaf(record["event"], record["salts"], record["redacted"])
    except Exception:  # any refusal: no leaf
        return None
    return leaf if leaf.hex() == record["event"].get("hash") else None


@native
class TestBundleEvents:
    def test_takes_the_common_lines_with_the_exact_leaf(self, seeded: Services) -> None:
        _, *lines = build(seeded, Selection())
        got = _native_leaves(lines, 0)
        assert [i for i, leaf in enumerate(got) if leaf is not None] == COMMON
        for line, leaf in zip(lines, got, strict=True):
            assert leaf is None or leaf == _exact(line)

    def test_the_bundle_verifies_the_same_with_and_without_it(
        self, seeded: Services, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        body = build(seeded, Selection())
        fast = verify_bundle(body, key(seeded))
        monkeypatch.setattr(_native, "bundle_events", None)
        slow = verify_bundle(body, key(seeded))
        assert fast == slow
        assert (fast.events, fast.complete) == (len(CONTENTS), True)

    def test_a_line_at_another_seq_or_tenant_is_declined(self, seeded: Services) -> None:
        _, *lines = build(seeded, Selection())
        assert _native_leaves(lines[:1], 1) == [None]
        assert _native.bundle_events is not None
        assert _native.bundle_events(lines[:1], 0, "other", '"other"', orjson.loads) == [None]

    def test_what_is_not_json_is_declined(self) -> None:
        assert _native_leaves([b"", b"{", b"[]", b'"x"', b"{}", b'{"event": 1}'], 0) == [None] * 6


def _event(line: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = line["event"]
    return event


def _other_id(event_id: str) -> str:
    """Another id of the same form: the last character changed (ULIDs are random)."""
    return event_id[:-1] + ("1" if event_id.endswith("0") else "0")


#: (name, change to line seq 1 of a whole-tenant bundle, what the failure names)
MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], None], str | None]] = [
    ("value", lambda r: _event(r).__setitem__("action", "doc.edit2"), "seq 1"),
    ("member", lambda r: _event(r)["actor"].__setitem__("id", "u-2"), "seq 1"),
    ("int-value", lambda r: _event(r)["metadata"].__setitem__("bytes", 124), "seq 1"),
    ("int-as-str", lambda r: _event(r)["metadata"].__setitem__("bytes", "123"), "seq 1"),
    ("bool-as-int", lambda r: _event(r)["metadata"].__setitem__("ok", 1), "seq 1"),
    ("salt", lambda r: r["salts"].__setitem__("action", "AAAAAAAAAAAAAAAAAAAAAA=="), "seq 1"),
    ("salt-not-canonical", lambda r: r["salts"].__setitem__("action", "x"), "not base64"),
    ("unsalted-field", lambda r: _event(r).__setitem__("outcome", "failure"), "seq 1"),
    ("unsalted-member", lambda r: _event(r)["target"].__setitem__("type", "doc"), "seq 1"),
    ("field-removed", lambda r: _event(r).pop("message"), "seq 1"),
    ("salt-removed", lambda r: r["salts"].pop("message"), "seq 1"),
    ("salt-of-nothing", lambda r: r["salts"].__setitem__("category", r["salts"]["action"]),
     "seq 1"),
    ("seq", lambda r: _event(r).__setitem__("seq", 2), "seq 1"),
    ("tenant", lambda r: _event(r).__setitem__("tenant_id", "other"), "seq 1"),
    ("id", lambda r: _event(r).__setitem__("id", _other_id(_event(r)["id"])), "seq 1"),
    ("received_at", lambda r: _event(r).__setitem__("received_at", "2020-01-01T00:00:00.000000Z"),
     "seq 1"),
    ("hash", lambda r: _event(r).__setitem__("hash", hashlib.sha256(b"x").hexdigest()),
     "seq 1"),
    # the exact path's call, whatever it is (here: the present value's commitment counts)
    ("redacted", lambda r: r.__setitem__("redacted", {"message": "00" * 32}), "not erased"),
    ("object-as-str", lambda r: _event(r).__setitem__("target", "d-1"), "seq 1"),
]  # fmt: skip


@native
@pytest.mark.parametrize(("change", "needle"), [pytest.param(c, n, id=i) for i, c, n in MUTATIONS])
def test_a_tampered_line_is_declined_and_fails(
    seeded: Services,
    change: Callable[[dict[str, Any]], None],
    needle: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    header, *lines = build(seeded, Selection())
    record = orjson.loads(lines[1])
    change(record)
    lines[1] = orjson.dumps(record)
    got = _native_leaves(lines, 0)
    assert got[1] is None or got[1] == _exact(lines[1])
    assert got[1] is None  # every change above is one the exact path refuses too
    if needle is None:
        fast = verify_bundle([header, *lines], key(seeded))
        monkeypatch.setattr(_native, "bundle_events", None)
        assert verify_bundle([header, *lines], key(seeded)) == fast
        return
    with pytest.raises(IntegrityError, match=needle):
        verify_bundle([header, *lines], key(seeded))


@pytest.mark.parametrize("start", [0, 1, 4095, 4096, 4097, 12345])
def test_the_chunked_fold_gives_the_root_leaf_by_leaf(start: int) -> None:
    rng = random.Random(start)
    leaves = [rng.randbytes(32) for _ in range(3 * 4096 + 77)]
    prefix = CompactRange(RFC9162)
    prefix.absorb([rng.randbytes(32) for _ in range(start)])
    expected = CompactRange.from_subtrees(RFC9162, start, prefix.hashes)
    expected.absorb(leaves)
    fold = bundle_module._Fold(CompactRange.from_subtrees(RFC9162, start, prefix.hashes))
    at = 0
    while at < len(leaves):
        step = rng.choice([1, 7, 300, 4096, 5000])
        fold.absorb(leaves[at : at + step])
        at += step
    assert fold.root() == expected.root()


def _variants(line: bytes) -> list[bytes]:
    """The line spelled otherwise: the same JSON differently (whitespace, key order, escapes,
    a repeated key) or not quite JSON (cut, trailing bytes, a raw control character)."""
    record = orjson.loads(line)
    event = record["event"]
    out = [
        orjson.dumps(record, option=orjson.OPT_INDENT_2),
        line.replace(b'":', b'": ', 1),
        orjson.dumps({"redacted": {}, "salts": record["salts"], "event": event}),
        orjson.dumps({**record, "extra": 1}),
        line.replace(b'"action":"', b'"action":"\\u0064', 1),  # an escaped first letter
        line.replace(b'"action":"', b'"action":"\\/', 1),
        line.replace(b'"action":', b'"action":"x","action":', 1),  # orjson: the last one wins
        line.replace(b'"salts":{', b'"salts":{"action":"AAAAAAAAAAAAAAAAAAAAAA==",', 1),
        line.replace(b'"seq":', b'"seq":0', 1),
        line.replace(b'"seq":', b'"seq":-', 1),
        line.replace(b'"redacted":{}', b'"redacted":{ }', 1),
        line.replace(b'"tenant_id":"acme"', b'"tenant_id":"\\u0061cme"', 1),
        line.replace(b'"hash":"', b'"hash":"' + event["hash"][:2].upper().encode(), 1),
        line + b" ",
        line + b"}",
        line[:-1],
        line.replace(b'"action":"', b'"action":"\x01', 1),
        line.replace(b'"action":"', b'"action":"\xff', 1),
        line.replace(b"}", b',"a.b":"x"}', 1),
        line.replace(b'"seq":', b'"seq":1,"seq":', 1),
        line.replace(b'"hash":', b'"hash":"' + b"0" * 64 + b'","hash":', 1),
    ]
    for name in ("actor", "target", "source", "metadata"):
        members = event.get(name)
        if type(members) is dict and len(members) > 1:
            # the object split in two: one reader takes both halves, orjson the last one
            first, *rest = members.items()
            halves = f'"{name}":{orjson.dumps(dict([first])).decode()},"{name}":'
            out.append(
                line.replace(
                    f'"{name}":{orjson.dumps(members).decode()}'.encode(),
                    halves.encode() + orjson.dumps(dict(rest)),
                    1,
                )
            )
    return [v for v in out if v != line]


@native
def test_the_byte_scan_answers_as_the_parsed_path(seeded: Services) -> None:
    """``bundle_events`` scans a bytes line itself and declines what it does not take to the
    parsed path (the one a str line takes): on any spelling, intact or not, a leaf it gives is
    the one the parsed path gives, or the exact path's; never one they refuse."""
    _, *lines = build(seeded, Selection())
    assert _native.bundle_events is not None
    for seq, line in enumerate(lines):
        for candidate in [line, *_variants(line)]:
            scanned = _native_leaves([candidate], seq)[0]
            parsed = _native.bundle_events([candidate.decode("utf-8", "surrogateescape")], seq,
                                           TENANT, '"acme"', orjson.loads)[0]  # fmt: skip
            assert scanned == parsed or (parsed is None and scanned == _exact(candidate)), (
                seq,
                candidate,
            )
    # the common line is taken as bytes: the same leaves as the parsed path, all of COMMON
    scanned_all = _native_leaves(lines, 0)
    assert [i for i, leaf in enumerate(scanned_all) if leaf is not None] == COMMON


@native
def test_the_common_line_is_never_parsed_into_objects(seeded: Services) -> None:
    """The common bytes line is scanned in C (no dict per line): ``loads`` is called only for
    the lines the scan declines."""
    _, *lines = build(seeded, Selection())
    parsed: list[bytes] = []

    def loads(line: bytes) -> Any:
        parsed.append(line)
        return orjson.loads(line)

    assert _native.bundle_events is not None
    got = _native.bundle_events(lines, 0, TENANT, '"acme"', loads)
    assert [i for i, leaf in enumerate(got) if leaf is not None] == COMMON
    assert parsed == [line for i, line in enumerate(lines) if i not in COMMON]


def _line(seq: int, content: dict[str, Any], rng: random.Random) -> bytes:
    """A bundle line of ``content`` at ``seq`` with its true hash (the exact path's leaf)."""
    import base64

    event = {
        "id": f"evt_{seq:026d}",
        "tenant_id": TENANT,
        "seq": seq,
        "received_at": "2026-11-23T10:00:05.123456Z",
        **content,
    }
    paths = [
        f"{name}.{sub}" if type(value) is dict else name
        for name, value in content.items()
        for sub in (value if type(value) is dict else [None])
    ]
    salts = {p: base64.b64encode(rng.randbytes(16)).decode() for p in paths}
    event["hash"] = _leaf(event, salts, {}).hex()
    return orjson.dumps({"event": event, "salts": salts, "redacted": {}})


@native
@pytest.mark.parametrize("special", ['"', "\\", "\n", "\x1f", "\x7f", "é", "€", "😀", "/"])
def test_strings_with_a_special_character_anywhere(special: str) -> None:
    """Strings are scanned 8 bytes at a time: a character JSON escapes, or one of several
    bytes, at each place of a long string is still taken by the byte scan, with the exact
    path's leaf."""
    rng = random.Random(special)
    lines = []
    for at in range(20):
        text = "a" * at + special + "b" * (19 - at)
        content = {"action": text, "actor": {"id": text[::-1], "n": at}, "message": text * 3}
        lines.append(_line(len(lines), content, rng))
    parsed: list[bytes] = []

    def loads(line: bytes) -> Any:
        parsed.append(line)
        return orjson.loads(line)

    assert _native.bundle_events is not None
    got = _native.bundle_events(lines, 0, TENANT, '"acme"', loads)
    assert got == [_exact(line) for line in lines]
    assert parsed == []  # each taken by the byte scan, none declined to the parsed path


@native
@pytest.mark.parametrize(("change", "needle"), [pytest.param(c, n, id=i) for i, c, n in MUTATIONS])
def test_a_file_is_read_in_whole_lines_with_the_same_answer(
    seeded: Services,
    change: Callable[[dict[str, Any]], None],
    needle: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A binary file goes to the C part a read of whole lines at a time (``bundle_chunk``, no
    object per line): intact or tampered, the answer is the one of its lines given as a list."""
    import io

    header, *lines = build(seeded, Selection())
    intact = b"".join(line + b"\n" for line in [header, *lines])
    assert verify_bundle(io.BytesIO(intact), key(seeded)) == verify_bundle(
        [header, *lines], key(seeded)
    )
    monkeypatch.setattr(bundle_module, "_READ_SIZE", 300)  # reads that cut lines
    assert verify_bundle(io.BytesIO(intact), key(seeded)).events == len(CONTENTS)
    record = orjson.loads(lines[1])
    change(record)
    lines[1] = orjson.dumps(record)
    body = b"".join(line + b"\n" for line in [header, *lines])
    if needle is None:
        assert verify_bundle(io.BytesIO(body), key(seeded)) == verify_bundle(
            [header, *lines], key(seeded)
        )
        return
    with pytest.raises(IntegrityError, match=needle):
        verify_bundle(io.BytesIO(body), key(seeded))


@native
def test_a_file_with_lines_past_its_range_fails_as_a_list(seeded: Services) -> None:
    import io

    from trailkeep.client.verify import SequenceError

    header, *lines = build(seeded, Selection())
    body = b"".join(line + b"\n" for line in [header, *lines, lines[-1]])
    with pytest.raises(SequenceError, match="past the end"):
        verify_bundle(io.BytesIO(body), key(seeded))
    assert _native.bundle_chunk is not None
    assert _native.bundle_chunk(b"", 0, 0, TENANT, '"acme"', orjson.loads) == ([], [])
    with pytest.raises(ValueError, match="whole lines"):
        _native.bundle_chunk(lines[0], 0, 9, TENANT, '"acme"', orjson.loads)
