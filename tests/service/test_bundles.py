"""Bundles: built from a real store, verified offline, and every tampering caught by seq."""

from __future__ import annotations

import base64
import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trailkeep.api.services import Services
from trailkeep.client.bundle import BUNDLE_FORMAT, BundleFormatError, verify_bundle
from trailkeep.errors import IntegrityError, InvalidInputError
from trailkeep.merkle import Signer
from trailkeep.model.canonical import jcs
from trailkeep.model.commitments import field_paths
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.service.admin_trail import Actor
from trailkeep.service.selection import Selection
from trailkeep.settings import Settings

TENANT = "acme"
#: Who creates the exports (each is recorded in the admin trail).
ACTOR = Actor("tests", "cli")
CONTENTS: list[dict[str, Any]] = [
    {"action": "user.login", "actor": {"id": "u-1", "email": "a@x.io"}, "timestamp": "2026-01-01"},
    {"action": "doc.edit", "actor": {"id": "u-1"}, "timestamp": "2026-01-02"},
    {"action": "user.login", "actor": {"id": "ünï-2", "name": "Zoë 🚀"}, "timestamp": "2026-01-03"},
    {"action": "doc.view", "metadata": {"k": "v"}, "timestamp": "2026-01-04"},
    {"action": "user.logout", "actor": {"id": "u-1"}, "outcome": "success"},
    {"action": "user.login", "actor": "a plain-string actor", "timestamp": "2026-01-06"},
    {"action": "doc.edit", "timestamp": "2026-01-07", "message": "façade ☃"},
    # keys that JCS (UTF-16 order) and a code-point sort order differently: the exact path
    {"action": "doc.view", "metadata": {"😀": "astral", "\uff01": "bmp", "ключ": "значение"}},
]  # fmt: skip
LOGIN = Selection({"action": ["user.login"]})
MATCHING = [0, 2, 5]  # seqs of user.login


def seed(services: Services, contents: list[dict[str, Any]]) -> None:
    services.tenants.create_tenant(TENANT)
    prepared = [services.events.prepare(c) for c in contents]
    services.store.append(TENANT, prepared).result()
    services.log.sign_pending()


def build(
    services: Services,
    selection: Selection,
    seq_range: tuple[int | None, int | None] = (None, None),
) -> list[bytes]:
    job = services.exports.create(TENANT, selection, "bundle", ACTOR, seq_range)
    return b"".join(services.exports.lines(job)).splitlines()


@pytest.fixture
def seeded(services: Services) -> Services:
    seed(services, CONTENTS)
    return services


def key(services: Services) -> str:
    return services.log.signer.verifier().key_string()


Lines = list[dict[str, Any]]


def edit(body: list[bytes], change: Callable[[Lines], None]) -> list[bytes]:
    records = [orjson.loads(line) for line in body]
    change(records)
    return [orjson.dumps(r) for r in records]


def _at(records: Lines, seq: int) -> dict[str, Any]:
    found = [r for r in records[1:] if r.get("seq", r.get("event", {}).get("seq")) == seq]
    return found[0]


def _drop(seq: int) -> Callable[[Lines], None]:
    return lambda records: records.remove(_at(records, seq))


def _set_disclosed(seq: int, value: Any, *, recommit: bool) -> Callable[[Lines], None]:
    def change(records: Lines) -> None:
        record = _at(records, seq)
        (path, item), *_ = record["disclosed"].items()
        item["value"] = value
        if recommit:  # a consistent lie: the commitment made to fit (so the leaf changes)
            salt = base64.b64decode(item["salt"])
            record["commitments"][path] = hashlib.sha256(salt + jcs(value)).hexdigest()
            record.pop("hash")

    return change


def _header(name: str, value: Any) -> Callable[[Lines], None]:
    return lambda records: records[0].__setitem__(name, value)


def _checkpoint_size(records: Lines) -> None:
    origin, size, rest = records[0]["checkpoint"].split("\n", 2)
    records[0]["checkpoint"] = f"{origin}\n{int(size) + 1}\n{rest}"


def _flip_hash(name: str) -> Callable[[Lines], None]:
    def change(records: Lines) -> None:
        raw = bytearray(base64.b64decode(records[0][name][0]))
        raw[0] ^= 1
        records[0][name][0] = base64.b64encode(bytes(raw)).decode()

    return change


def _cut_range(records: Lines) -> None:
    records[0]["range"][1] -= 1
    records.pop()


def _duplicate(records: Lines) -> None:
    records.insert(2, records[1])


def _commitment_dropped(seq: int) -> Callable[[Lines], None]:
    def change(records: Lines) -> None:
        record = _at(records, seq)
        (path, _), *_ = record["disclosed"].items()
        del record["commitments"][path]
        del record["disclosed"]
        record.pop("hash")

    return change


class TestVerifies:
    """What the builder writes verifies, holding exactly the matching events."""

    def test_everything(self, seeded: Services) -> None:
        body = build(seeded, Selection())
        report = verify_bundle(body, key(seeded))
        assert (report.events, report.excluded, report.complete) == (8, 0, True)

    def test_filtered(self, seeded: Services) -> None:
        body = build(seeded, LOGIN)
        header, *records = (orjson.loads(line) for line in body)
        assert header["format"] == BUNDLE_FORMAT
        assert [r["event"]["seq"] for r in records if "event" in r] == MATCHING
        excluded = [r for r in records if "event" not in r]
        assert all(list(r["disclosed"]) == ["action"] for r in excluded)
        assert all("salts" not in r for r in excluded)  # nothing but the failing field
        report = verify_bundle(body, key(seeded))
        assert (report.events, report.excluded, report.complete) == (3, 5, True)

    def test_absent_field_needs_no_disclosure(self, seeded: Services) -> None:
        body = build(seeded, Selection({"actor.email": ["a@x.io"]}))
        records = [orjson.loads(line) for line in body[1:]]
        assert records[3]["disclosed"] == {}  # seq 3 has no actor: its commitments show it
        assert verify_bundle(body, key(seeded)).events == 1

    def test_a_range_in_the_middle(self, seeded: Services) -> None:
        body = build(seeded, LOGIN, (1, 6))
        report = verify_bundle(body, key(seeded))
        assert (report.start, report.end, report.events, report.excluded) == (1, 6, 2, 3)

    def test_an_empty_range(self, seeded: Services) -> None:
        report = verify_bundle(build(seeded, LOGIN, (3, 3)), key(seeded))
        assert (report.events, report.excluded, report.complete) == (0, 0, True)

    def test_an_empty_log(self, services: Services) -> None:
        seed(services, [])
        report = verify_bundle(build(services, LOGIN), key(services))
        assert (report.end, report.events, report.complete) == (0, 0, True)


class TestTampering:
    """Every change to a bundle fails verification, naming the seq where it can."""

    @pytest.mark.parametrize(
        ("change", "error", "needle"),
        [
            pytest.param(_drop(2), IntegrityError, "seq 2", id="drop-matching-event"),
            pytest.param(_drop(3), IntegrityError, "seq 3", id="drop-excluded-leaf"),
            pytest.param(_set_disclosed(1, "doc.editt", recommit=False), IntegrityError,
                         "seq 1: the disclosed value does not match", id="alter-disclosed"),
            pytest.param(_set_disclosed(1, "user.login", recommit=True), IntegrityError,
                         "seq 1: event", id="swap-disclosed-for-a-match"),
            pytest.param(_set_disclosed(1, "doc.other", recommit=True), IntegrityError,
                         "do not make the checkpoint's tree", id="consistent-lie-changes-root"),
            pytest.param(_header("filter", [{"path": "action", "in": ["doc.edit"]}]),
                         IntegrityError, "seq 0: event", id="filter-changed"),
            pytest.param(_checkpoint_size, IntegrityError, "signature", id="checkpoint-changed"),
            pytest.param(_cut_range, IntegrityError, "do not make", id="range-truncated"),
            pytest.param(lambda r: r.pop(), IntegrityError, "truncated", id="file-truncated"),
            pytest.param(_duplicate, IntegrityError, "expected seq 1", id="leaf-duplicated"),
            pytest.param(_commitment_dropped(1), IntegrityError, "do not make",
                         id="commitment-dropped-to-fake-absence"),
            pytest.param(lambda r: r.append(r[1]), IntegrityError, "past the end",
                         id="trailing-leaf"),
            pytest.param(_header("range", [1, 7]), IntegrityError, r"hashes of \[0, 1\)",
                         id="range-shifted"),
        ],
    )  # fmt: skip
    def test_fails(
        self, seeded: Services, change: Callable[[Lines], None], error: type, needle: str
    ) -> None:
        body = edit(build(seeded, LOGIN), change)
        with pytest.raises(error, match=needle):
            verify_bundle(body, key(seeded))

    @pytest.mark.parametrize("name", ["left", "right"])
    def test_an_altered_proof_hash(self, seeded: Services, name: str) -> None:
        body = edit(build(seeded, LOGIN, (3, 5)), _flip_hash(name))
        with pytest.raises(IntegrityError, match="do not make the checkpoint's tree"):
            verify_bundle(body, key(seeded))

    def test_wrong_key(self, seeded: Services) -> None:
        other = Signer.generate(seeded.log.signer.name).verifier().key_string()
        with pytest.raises(IntegrityError, match="not the pinned key"):
            verify_bundle(build(seeded, LOGIN), other)
        unnamed = edit(build(seeded, LOGIN), lambda r: r[0].pop("key"))
        with pytest.raises(IntegrityError, match="signature"):
            verify_bundle(unnamed, other)

    def test_not_a_bundle(self, seeded: Services) -> None:
        dump = seeded.exports.create(TENANT, Selection(), "jsonl", ACTOR)
        with pytest.raises(BundleFormatError, match="verify dump"):
            verify_bundle(b"".join(seeded.exports.lines(dump)).splitlines(), key(seeded))
        with pytest.raises(BundleFormatError, match="empty"):
            verify_bundle([], key(seeded))


class TestWhatCannotBeShown:
    """Pruned leaves and erased fields are reported, never passed silently."""

    def test_pruned_leaves(self, seeded: Services) -> None:
        def prune(records: Lines) -> None:
            for seq in (1, 2):  # an excluded leaf and a matching event, as tree16 writes them
                record = _at(records, seq)
                leaf = record.get("hash") or record["event"]["hash"]
                records[records.index(record)] = {"seq": seq, "hash": leaf, "pruned": True}

        report = verify_bundle(edit(build(seeded, LOGIN), prune), key(seeded))
        assert (report.pruned, report.pruned_seqs, report.complete) == (2, (1, 2), False)
        assert report.gaps() == [
            "2 pruned leaves in range: completeness cannot be shown for them (seq 1, 2)"
        ]

    def test_a_pruned_leaf_with_another_hash(self, seeded: Services) -> None:
        def prune(records: Lines) -> None:
            records[2] = {"seq": 1, "hash": "00" * 32, "pruned": True}

        with pytest.raises(IntegrityError, match="do not make"):
            verify_bundle(edit(build(seeded, LOGIN), prune), key(seeded))

    def test_withheld_disclosure(self, seeded: Services) -> None:
        body = edit(build(seeded, LOGIN), lambda r: _at(r, 3).pop("disclosed"))
        report = verify_bundle(body, key(seeded))
        assert (report.unprovable, report.complete) == ((3,), False)
        assert "1 events cannot be shown not to match" in report.gaps()[0]

    @pytest.mark.asyncio
    async def test_erased_fields(self, seeded: Services) -> None:
        for seq in (1, 4):
            event = seeded.store.scan_evidence(TENANT, seq, seq + 1)[0].event
            await seeded.redaction.redact(TENANT, event.id, ["actor.id"], "admin")
        seeded.log.sign_pending()
        selection = Selection({"actor.id": ["u-1"], "action": ["doc.edit", "user.login"]})
        body = build(seeded, selection)
        records = [orjson.loads(line) for line in body[1:]]
        assert records[4]["disclosed"]["action"]["value"] == "user.logout"  # shown another way
        assert records[1]["erased"] == ["actor.id"]
        report = verify_bundle(body, key(seeded))
        assert (report.events, report.unprovable) == (1, (1,))


class TestUnsupported:
    """A filter a bundle cannot decide is refused when the export is created."""

    @pytest.mark.parametrize(
        "selection",
        [
            pytest.param(Selection(q="free words"), id="free-text"),
            pytest.param(Selection(q="metadata.k:v"), id="metadata"),
            pytest.param(Selection(q="NOT action:x"), id="not"),
            pytest.param(Selection(q="action:a OR actor.id:b"), id="or-across-fields"),
            pytest.param(Selection(q="received_at>2026-01-01"), id="positional"),
        ],
    )
    def test_refused(self, seeded: Services, selection: Selection) -> None:
        with pytest.raises(InvalidInputError, match="cannot bundle"):
            seeded.exports.create(TENANT, selection, "bundle", ACTOR)


# -- the property: a bundle holds exactly the matching set ---------------------------------

_ACTIONS = ("user.login", "doc.edit", "Doc.Edit", "ü.action")
_ACTORS = ("u-1", "u-2", "ü-3")
_DAYS = [f"2026-01-0{d}" for d in range(1, 6)]
_contents = st.fixed_dictionaries(
    {"action": st.sampled_from(_ACTIONS)},
    optional={
        "actor": st.fixed_dictionaries({}, optional={"id": st.sampled_from(_ACTORS),
                                                     "type": st.sampled_from(("user", "bot"))}),
        "outcome": st.sampled_from(("success", "failure")),
        "timestamp": st.sampled_from(_DAYS),
        "session_id": st.sampled_from(("s1", "s2")),
    },
)  # fmt: skip
_selections = st.builds(
    Selection,
    filters=st.dictionaries(
        st.sampled_from(("action", "actor.id", "actor.type", "outcome", "session_id")),
        st.lists(st.sampled_from((*_ACTIONS, *_ACTORS, "user", "success", "s1")), min_size=1,
                 max_size=3),
        max_size=2,
    ),
    start=st.sampled_from((None, *(f"{d}T00:00:00.000000Z" for d in _DAYS))),
    end=st.sampled_from((None, *(f"{d}T12:00:00.000000Z" for d in _DAYS))),
    q=st.sampled_from((None, "action:doc.edit", "outcome:failure OR outcome:success",
                       "timestamp<2026-01-03 actor.type:bot")),
)  # fmt: skip


def _brute_force(contents: list[dict[str, Any]], selection: Selection) -> list[int]:
    """The seqs a selection matches, read off the contents directly."""
    found = []
    for seq, content in enumerate(contents):
        values = field_paths({"outcome": "unknown", **content})
        ts = content.get("timestamp", "9999") + "T00:00:00.000000Z"
        ok = all(values.get(name) in vs for name, vs in selection.filters.items())
        ok = ok and (selection.start is None or ts >= selection.start)
        ok = ok and (selection.end is None or ts < selection.end)
        found += [seq] if ok and _q(values, ts, selection.q) else []
    return found


def _q(values: dict[str, Any], ts: str, q: str | None) -> bool:
    if q == "action:doc.edit":
        return values["action"] == "doc.edit"
    if q == "outcome:failure OR outcome:success":
        return values["outcome"] in ("failure", "success")
    if q == "timestamp<2026-01-03 actor.type:bot":
        return ts < "2026-01-03" and values.get("actor.type") == "bot"
    return True


@given(contents=st.lists(_contents, min_size=1, max_size=12), selection=_selections)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_bundle_holds_exactly_the_matching_events(
    contents: list[dict[str, Any]], selection: Selection
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        built = Services.build(
            Settings(database=f"sqlite:///{where / 't.db'}", signing_key=where / "k",
                     server_name="test.trailkeep")
        )  # fmt: skip
        try:
            # timestamps in the past, all on the same day when not given
            seed(built, [{"timestamp": "2026-01-09", **c} for c in contents])
            contents = [{"timestamp": "2026-01-09", **c} for c in contents]
            body = build(built, selection)
            # the seeded events only: the export's own export.create record comes after them
            listed = built.store.list_events(
                TENANT,
                EventQuery(where=selection.condition(), start=selection.start,
                           end=selection.end, sort=Sort.ASC, limit=100, by_seq=True,
                           max_seq=len(contents) - 1),
            ).events  # fmt: skip
            report = verify_bundle(body, key(built))
        finally:
            built.close()
    included = [orjson.loads(line)["event"]["seq"] for line in body[1:] if b'"event"' in line]
    expected = _brute_force(contents, selection)
    assert included == expected
    assert [e.seq for e in listed] == expected  # the list API selects the same set
    assert (report.events, report.excluded, report.complete) == (
        len(expected), len(contents) - len(expected), True,
    )  # fmt: skip
