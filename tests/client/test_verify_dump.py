"""Offline dump verification: fast, and exactly as strict and precise as the exact path."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.model.strategies import event_contents
from trailkeep.client import verify as verify_module
from trailkeep.client.verify import (
    DUMP_FORMAT,
    DumpFormatError,
    DumpReport,
    FieldMismatchError,
    LeafMismatchError,
    SequenceError,
    verify_dump,
)
from trailkeep.errors import IntegrityError
from trailkeep.merkle import RFC9162, Checkpoint, CompactRange, Signer
from trailkeep.model.commitments import (
    REDACTED,
    commit_all,
    field_paths,
    leaf_hash,
    leaf_input,
    new_salts,
)
from trailkeep.model.evidence import LeafRecomputer, encode_redacted, encode_salts

SIGNER = Signer.generate("trailkeep.test")
KEY = SIGNER.verifier().key_string()
TENANT = "acme"

CONTENTS: list[dict[str, Any]] = [
    {"action": "login", "actor": {"id": "u-1", "email": "u1@example.com"}, "outcome": "success"},
    {"action": "document.update", "metadata": {"bytes": 20788, "mfa": True, "region": "eu"}},
    {"action": "ünïcödé", "actor": {"name": "Zoë", "ключ": "значение"}, "message": '€ 😀\n\t"'},
    {"action": "nested", "metadata": {"tags": ["a", 1, None], "deep": {"x": {"y": 1.5}}}},
    {"action": "whole", "actor": "alice", "old": {"n": 1}, "new": {"n": 2.25}},
    {"action": "redact-me", "actor": {"id": "u-2", "email": "secret@example.com"}},
    {"action": "numbers", "metadata": {"big": 2**53 - 1, "neg": -5, "f": 1e21, "z": 0}},
]


def record(
    content: dict[str, Any], seq: int, erase: Iterable[str] = ()
) -> tuple[dict[str, Any], bytes]:
    """An event's dump record, as the server writes it (``erase``: paths redacted), and leaf."""
    values = field_paths(content)
    salts = new_salts(values)
    commitments = commit_all(values, salts)
    event_id = f"evt_{seq:026d}"
    received_at = f"2026-11-23T10:00:{seq % 60:02d}.123456Z"
    leaf = leaf_hash(leaf_input(TENANT, seq, event_id, received_at, commitments))
    event = {"id": event_id, "tenant_id": TENANT, "seq": seq, "received_at": received_at}
    event |= {**content, "hash": leaf.hex()}
    kept = {}
    for path in erase:
        name, _, key = path.partition(".")
        event[name] = {**event[name], key: dict(REDACTED)}
        del salts[path]
        kept[path] = commitments[path]
    body = {"event": event, "salts": encode_salts(salts), "redacted": encode_redacted(kept)}
    return body, leaf


def dump(
    contents: list[dict[str, Any]] = CONTENTS, erase: dict[int, list[str]] | None = None
) -> list[bytes]:
    """A whole-tenant dump of ``contents`` with its signed checkpoint, as JSON lines."""
    erase = erase or {5: ["actor.email"]}
    bodies, leaves = zip(
        *(record(c, s, erase.get(s, ())) for s, c in enumerate(contents)), strict=True
    )
    compact = CompactRange(RFC9162)
    compact.extend(leaves)
    note = SIGNER.sign_note(
        Checkpoint(f"trailkeep.test/{TENANT}", len(leaves), compact.root()).to_body()
    )
    header = {"format": DUMP_FORMAT, "tenant_id": TENANT, "checkpoint": note}
    return [orjson.dumps(header), *map(orjson.dumps, bodies)]


def outcome(lines: Iterable[bytes | str]) -> DumpReport | tuple[type[Exception], str]:
    try:
        report = verify_dump(lines, KEY)
    except IntegrityError as exc:
        return type(exc), exc.message
    return report


def exact_outcome(lines: list[bytes]) -> DumpReport | tuple[type[Exception], str]:
    """What verify_dump answers when every event takes the exact path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LeafRecomputer, "verified_leaf", lambda self, event, salts: None)
        return outcome(lines)


def edit(lines: list[bytes], index: int, change: Callable[[dict[str, Any]], Any]) -> list[bytes]:
    body = orjson.loads(lines[index])
    change(body)
    return [*lines[:index], orjson.dumps(body), *lines[index + 1 :]]


class TestVerifyDump:
    """A dump verifies from any source of lines, with progress, and counts its erasures."""

    def test_lines(self) -> None:
        report = verify_dump(dump(), KEY)
        assert (report.tenant_id, report.events, report.redacted_fields) == (TENANT, 7, 1)
        assert report.checkpoint.size == 7

    def test_text_lines(self) -> None:
        assert verify_dump([line.decode() for line in dump()], KEY).events == 7

    @pytest.mark.parametrize("read_size", [1, 7, 100, 1 << 20])
    @pytest.mark.parametrize(
        ("newline", "last"),
        [
            pytest.param(b"\n", b"\n", id="lf"),
            pytest.param(b"\r\n", b"\r\n", id="crlf"),
            pytest.param(b"\n", b"", id="no-final-newline"),
        ],
    )
    def test_binary_file_in_any_reads(
        self, monkeypatch: pytest.MonkeyPatch, read_size: int, newline: bytes, last: bytes
    ) -> None:
        monkeypatch.setattr(verify_module, "_READ_SIZE", read_size)
        data = newline.join(dump()) + last
        report = verify_dump(io.BufferedReader(io.BytesIO(data)), KEY)  # type: ignore[arg-type]
        assert (report.events, report.redacted_fields) == (7, 1)

    def test_file_on_disk(self, tmp_path: Path) -> None:
        path = tmp_path / "acme.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in dump()))
        with path.open("rb") as fh:
            assert verify_dump(fh, KEY).events == 7

    def test_progress(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(verify_module, "_BATCH", 3)
        calls: list[tuple[int, int]] = []
        verify_dump(dump(), KEY, lambda done, total: calls.append((done, total)))
        assert calls == [(2, 7), (5, 7), (7, 7)]

    @pytest.mark.parametrize(
        ("data", "needle"),
        [
            pytest.param(b"", "the dump is empty", id="empty"),
            pytest.param(b"\n", "line 1 is not JSON", id="blank"),
            pytest.param(b"[]\n", "line 1 is not a JSON object", id="not-an-object"),
        ],
    )
    def test_not_a_dump(self, data: bytes, needle: str) -> None:
        with pytest.raises(DumpFormatError, match=needle):
            verify_dump(io.BytesIO(data), KEY)

    def test_blank_line(self) -> None:
        lines = dump()
        with pytest.raises(DumpFormatError, match="line 4 is not JSON"):
            verify_dump(io.BytesIO(b"\n".join([*lines[:3], b"", *lines[3:]])), KEY)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        target, name = body, path
        while "/" in name:
            head, name = name.split("/", 1)
            target = target[head]
        target[name] = value

    return change


TAMPERING: list[Any] = [
    pytest.param(1, _set("event/action", "forged"), LeafMismatchError, "seq 0", id="value"),
    pytest.param(2, _set("event/metadata/bytes", 1), LeafMismatchError, "seq 1", id="number"),
    pytest.param(3, _set("event/extra", "x"), FieldMismatchError, "^extra: event", id="added"),
    pytest.param(
        3, lambda b: b["event"].pop("message"), FieldMismatchError, "^message: ", id="dropped"
    ),
    pytest.param(
        1, lambda b: b["salts"].pop("outcome"), FieldMismatchError, "^outcome: ", id="no-salt"
    ),
    pytest.param(
        1,
        _set("event/actor/email", dict(REDACTED)),
        LeafMismatchError,
        "seq 0",
        id="redaction-marker-with-its-salt",
    ),
    pytest.param(
        6,
        lambda b: _set("event/actor/id", dict(REDACTED))(b) or b["salts"].pop("actor.id"),
        FieldMismatchError,
        "^actor.id: .*no redaction commitment",
        id="redaction-without-commitment",
    ),
    pytest.param(
        6,
        lambda b: b["redacted"].clear(),
        FieldMismatchError,
        "^actor.email: ",
        id="dropped-commitment",
    ),
    pytest.param(
        6,
        _set("redacted/actor.email", "00" * 32),
        LeafMismatchError,
        "seq 5",
        id="other-commitment",
    ),
    pytest.param(2, _set("salts/action", "AAAA"), FieldMismatchError, "a salt is 16", id="salt"),
    pytest.param(2, _set("salts/action", "A!A="), IntegrityError, "not base64", id="bad-salt"),
    pytest.param(2, _set("event/hash", "0" * 64), LeafMismatchError, "seq 1", id="hash"),
    pytest.param(2, _set("event/seq", 5), SequenceError, "expected seq 1", id="seq"),
    pytest.param(2, _set("event/seq", True), IntegrityError, "seq must be", id="bool-seq"),
    pytest.param(2, _set("event/tenant_id", "b"), SequenceError, "of tenant acme", id="tenant"),
    pytest.param(2, _set("event/received_at", "now"), IntegrityError, "received_at", id="time"),
    pytest.param(2, _set("salts", []), DumpFormatError, "'salts' is not", id="salts-list"),
    pytest.param(2, _set("redacted", None), DumpFormatError, "'redacted' is n", id="no-redact"),
    pytest.param(2, _set("event", "x"), SequenceError, "expected seq 1", id="event-text"),
]


class TestTampering:
    """Every change is named, by event and field, exactly as the exact path names it."""

    @pytest.mark.parametrize(("index", "change", "error", "needle"), TAMPERING)
    def test_named(
        self,
        index: int,
        change: Callable[[dict[str, Any]], None],
        error: type[Exception],
        needle: str,
    ) -> None:
        lines = edit(dump(), index, change)
        got = outcome(lines)
        assert got == exact_outcome(lines)
        assert isinstance(got, tuple)
        assert issubclass(got[0], error)
        assert re.search(needle, got[1]), got[1]

    def test_forged_hash_breaks_the_root(self) -> None:
        lines = dump()
        body, _ = record({"action": "forged"}, 2)
        with pytest.raises(IntegrityError, match="another root"):
            verify_dump([*lines[:3], orjson.dumps(body), *lines[4:]], KEY)

    @pytest.mark.parametrize(
        ("mutate", "needle"),
        [
            pytest.param(lambda ls: ls[:3] + ls[4:], "line 4: expected seq 2", id="dropped"),
            pytest.param(lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], "seq 0", id="swapped"),
            pytest.param(lambda ls: ls[:-1], "covers 7", id="truncated"),
            pytest.param(lambda ls: [*ls, ls[-1]], "expected seq 7", id="duplicated-tail"),
        ],
    )
    def test_structural(self, mutate: Callable[[list[bytes]], list[bytes]], needle: str) -> None:
        with pytest.raises(IntegrityError, match=needle):
            verify_dump(mutate(dump()), KEY)


class TestFastAndExactAgree:
    """Over any events, erased fields and tampering, the fast path changes nothing but time."""

    @settings(max_examples=40, deadline=None)
    @given(
        contents=st.lists(event_contents, min_size=1, max_size=6),
        erase_first=st.booleans(),
        tamper=st.sampled_from([None, *(p.values[1] for p in TAMPERING)]),
        index=st.integers(1, 6),
    )
    def test_agree(
        self,
        contents: list[dict[str, Any]],
        erase_first: bool,
        tamper: Callable[[dict[str, Any]], None] | None,
        index: int,
    ) -> None:
        paths = sorted(field_paths(contents[0]))
        lines = dump(contents, {0: paths[:1] if erase_first and "." in paths[0] else []})
        if tamper is not None and index < len(lines):
            with contextlib.suppress(KeyError, TypeError):  # a change this event cannot take
                lines = edit(lines, index, tamper)
        assert outcome(lines) == exact_outcome(lines)
