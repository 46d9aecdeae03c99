"""Offline verification of a bundle: a selection's events, and that none was left out.

A bundle (``trailkeep-bundle/v1``, written by ``POST /v1/exports`` with ``format=bundle``)
covers the leaves ``[a, b)`` of a tenant's log. :func:`verify_bundle` checks, with nothing but
the file and a pinned public key:

1. the checkpoint's signature, and that the bundle names the pinned key;
2. every included event: its commitments and leaf, and that it matches the filter;
3. every other leaf: its disclosed values against their commitments, and that they (or a
   field its commitments show is absent) really fail the filter;
4. that the leaves, folded onto the hashes of ``[0, a)``, give a tree of size ``b`` that the
   consistency proof extends to the checkpoint's root.

What it cannot show it reports, never skips: pruned leaves (content gone), and leaves whose
non-match only an erased value could show. See docs/integrity.md.
"""

from __future__ import annotations

import base64
import binascii
import io
from binascii import a2b_base64
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from itertools import chain
from typing import Any, Final

import orjson

from trailkeep.errors import IntegrityError, InvalidInputError, ValidationFailedError
from trailkeep.merkle import (
    RFC9162,
    Checkpoint,
    CompactRange,
    ProofError,
    Verifier,
    open_checkpoint,
    verify_consistency,
)
from trailkeep.model import _native
from trailkeep.model.canonical import jcs
from trailkeep.model.commitments import LEAF_VERSION, SALT_SIZE, leaf_hash, leaf_input
from trailkeep.model.disclosure import ABSENT, BUNDLE_FORMAT, BundleFilter, path_value
from trailkeep.model.evidence import FieldMismatchError, LeafRecomputer

from .verify import (
    _READ_SIZE,
    DUMP_FORMAT,
    DumpFormatError,
    DumpProgress,
    LeafMismatchError,
    SequenceError,
    _json,
    _leaf,
    _line_batches,
    _origin,
    _verifier,
)

__all__ = [
    "BUNDLE_FORMAT",
    "BundleFormatError",
    "BundleReport",
    "verify_bundle",
]

_EXPORT_FORMAT: Final = "trailkeep-export/v1"
_SAMPLE: Final = 20  # seqs named in a report per kind of gap
#: Leaves folded at a time into one complete subtree (a power of two), a level per C call.
_CHUNK: Final = 4096


class BundleFormatError(DumpFormatError):
    """The input is not a trailkeep bundle (another file, or a malformed header)."""


@dataclass(frozen=True, slots=True)
class BundleReport:
    """What a bundle proved.

    Attributes:
        start, end: the seq range ``[start, end)`` it covers.
        events: matching events it holds, all verified.
        excluded: leaves shown not to match.
        pruned: how many leaves of the range were pruned (content gone): completeness cannot
            be shown for them. ``pruned_seqs``: the first few.
        unprovable: seqs of events that could be neither included nor shown not to match (an
            erased value the filter needs).
    """

    tenant_id: str
    checkpoint: Checkpoint
    filter: BundleFilter
    start: int
    end: int
    events: int
    excluded: int
    redacted_fields: int
    pruned: int
    pruned_seqs: tuple[int, ...] = ()
    unprovable: tuple[int, ...] = field(default=())

    @property
    def complete(self) -> bool:
        """Whether every matching event of the range is provably in the bundle."""
        return not self.pruned and not self.unprovable

    def gaps(self) -> list[str]:
        """One plain sentence per kind of leaf completeness could not be shown for."""
        lines = []
        if self.pruned:
            lines.append(
                f"{self.pruned} pruned leaves in range: completeness cannot be shown for them"
                f" (seq {_seqs(self.pruned_seqs, self.pruned)})"
            )
        if self.unprovable:
            lines.append(
                f"{len(self.unprovable)} events cannot be shown not to match: the fields the"
                f" filter needs were erased (seq {_seqs(self.unprovable, len(self.unprovable))})"
            )
        return lines


def _seqs(seqs: Iterable[int], total: int) -> str:
    shown = list(seqs)[:_SAMPLE]
    more = f", ... {total - len(shown)} more" if total > len(shown) else ""
    return ", ".join(map(str, shown)) + more


def verify_bundle(
    lines: Iterable[bytes | str], public_key: str | Verifier, progress: DumpProgress | None = None
) -> BundleReport:
    """Verify a bundle completely (module docstring); a binary file is read in big chunks.

    Raises:
        BundleFormatError: the input is not a bundle (a dump or filtered export says so).
        FieldMismatchError, LeafMismatchError, SequenceError: naming the first bad leaf.
        IntegrityError: a bad signature or key, or the leaves do not make the checkpoint's tree.
    """
    batches = _batches(lines)
    first = next(batches, None)
    if not first:
        raise BundleFormatError("the file is empty")
    head: bytes | str
    rest: Sequence[bytes | str] | memoryview
    if isinstance(first, memoryview):  # whole lines of a read: the header, then the rest
        cut = bytes(first).find(b"\n")  # there is one: the view ends with it
        head, rest = bytes(first[:cut]), first[cut + 1 :]
    else:
        head, rest = first[0], first[1:]
    header = _Header.read(_json(head, 1), _verifier(public_key))
    leaves = _Leaves(header)
    tree = _Fold(_left(header))
    for batch in chain([rest], batches):
        tree.absorb(leaves.leaves(batch))
        if progress is not None:
            progress(leaves.count, header.end - header.start)
    if header.start + leaves.count != header.end:
        raise SequenceError(
            f"the bundle ends at seq {header.start + leaves.count}, but its range ends at"
            f" {header.end} (truncated)"
        )
    _right(header, tree.root())
    return leaves.report()


def _batches(lines: Iterable[bytes | str]) -> Iterator[Sequence[bytes | str] | memoryview]:
    """``_line_batches``, but a binary file with the C part in big reads of whole lines (bytes
    ending in a newline, as views of the read), split into lines only where needed
    (``_Leaves.leaves``)."""
    if _native.bundle_chunk is None or not isinstance(lines, io.BufferedIOBase | io.RawIOBase):
        yield from _line_batches(lines)
        return
    rest = b""
    while chunk := lines.read(_READ_SIZE):
        cut = chunk.rfind(b"\n") + 1
        if not cut:
            rest += chunk
            continue
        begin = 0
        if rest:  # the line the last read began, on its own
            begin = chunk.find(b"\n") + 1
            yield [rest + chunk[: begin - 1]]
        if cut > begin:
            yield memoryview(chunk)[begin:cut]  # not copied
        rest = chunk[cut:]
    if rest:
        yield [rest]


def _parents_py(row: list[bytes]) -> list[bytes]:
    """One level up: ``RFC9162.hash_children`` of each pair (``_fastleaf.parents`` in C)."""
    return [sha256(b"\x01" + a + b).digest() for a, b in zip(row[0::2], row[1::2], strict=True)]


_parents: Final = _native.parents or _parents_py


class _Fold:
    """A :class:`CompactRange` fed a chunk at a time: once its size is a multiple of
    ``_CHUNK``, each whole chunk of leaves is folded level by level (one C call per level)
    into the one subtree it fills, and only that subtree goes onto the frontier. Same root
    as appending leaf by leaf (tests/client/test_bundle.py compares them)."""

    __slots__ = ("_pending", "_range")

    def __init__(self, compact: CompactRange) -> None:
        self._range = compact
        self._pending: list[bytes] = []

    def absorb(self, leaves: list[bytes]) -> None:
        pending = self._pending
        pending += leaves
        size = self._range.size
        if size % _CHUNK:
            take = min(len(pending), _CHUNK - size % _CHUNK)
            self._range.absorb(pending[:take])
            del pending[:take]
            size += take
        done = 0
        frontier: list[bytes] | None = None
        while len(pending) - done >= _CHUNK:
            row = pending[done : done + _CHUNK]
            while len(row) > 1:
                row = _parents(row)
            if frontier is None:
                frontier = list(self._range.hashes)
            node, index = row[0], size // _CHUNK
            while index & 1:  # CompactRange.append's loop, one whole subtree at a time
                node = RFC9162.hash_children(frontier.pop(), node)
                index >>= 1
            frontier.append(node)
            size += _CHUNK
            done += _CHUNK
        if frontier is not None:
            self._range = CompactRange.from_subtrees(RFC9162, size, frontier)
            del pending[:done]

    def root(self) -> bytes:
        self._range.absorb(self._pending)
        self._pending = []
        return self._range.root()


@dataclass(frozen=True, slots=True)
class _Header:
    tenant_id: str
    checkpoint: Checkpoint
    start: int
    end: int
    filter: BundleFilter
    left: list[bytes]
    right: list[bytes]

    @classmethod
    def read(cls, data: Mapping[str, Any], verifier: Verifier) -> _Header:
        fmt = data.get("format")
        if fmt != BUNDLE_FORMAT:
            raise BundleFormatError(_not_a_bundle(fmt))
        try:
            tenant_id, note = data["tenant_id"], data["checkpoint"]
            start, end = data["range"]
            filt = BundleFilter.from_json(data["filter"])
            left, right = [_hash(h) for h in data["left"]], [_hash(h) for h in data["right"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleFormatError(f"line 1: malformed bundle header ({exc})") from None
        if not (type(tenant_id) is str and type(note) is str and type(start) is type(end) is int):
            raise BundleFormatError("line 1: malformed bundle header")
        _same_key(data.get("key"), verifier)
        checkpoint = open_checkpoint(note, verifier)
        _origin(checkpoint, tenant_id)
        if not 0 <= start <= end <= checkpoint.size:
            raise IntegrityError(
                f"range [{start}, {end}) does not lie in the checkpoint of size {checkpoint.size}"
            )
        return cls(tenant_id, checkpoint, start, end, filt, left, right)


def _not_a_bundle(fmt: Any) -> str:
    if fmt == _EXPORT_FORMAT:
        return (
            "this is a filtered export, which cannot be verified offline; export with"
            " --format bundle to get a file that proves the selection is complete"
        )
    if fmt == DUMP_FORMAT:
        return "this is a whole-tenant dump: check it with `trailkeep verify dump`"
    return f"line 1 is not a {BUNDLE_FORMAT} header"


def _same_key(key: Any, verifier: Verifier) -> None:
    if key is None:
        return
    if key != verifier.key_string():
        raise IntegrityError(
            f"the bundle was signed with key {key!r}, not the pinned key {verifier.key_string()!r}"
        )


def _hash(value: Any) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError(f"{value!r} is not a base64 hash") from None
    if len(raw) != RFC9162.size:
        raise ValueError(f"{value!r} is not a {RFC9162.size}-byte hash")
    return raw


def _left(header: _Header) -> CompactRange:
    try:
        return CompactRange.from_subtrees(RFC9162, header.start, header.left)
    except InvalidInputError as exc:
        raise IntegrityError(f"the hashes of [0, {header.start}): {exc.message}") from None


def _right(header: _Header, root: bytes) -> None:
    try:
        verify_consistency(
            RFC9162, header.end, header.checkpoint.size, header.right, root,
            header.checkpoint.root_hash,
        )  # fmt: skip
    except ProofError as exc:
        raise IntegrityError(
            f"the leaves of [{header.start}, {header.end}) do not make the checkpoint's tree of"
            f" size {header.checkpoint.size} (a leaf, a left subtree or the proof was altered,"
            f" or a leaf is missing): {exc.message}"
        ) from None


class _Leaves:
    """The leaf lines of a bundle, in order: each checked, its leaf hash returned."""

    def __init__(self, header: _Header) -> None:
        self.header = header
        self.count = 0
        self.events = self.excluded = self.redacted_fields = self.pruned = 0
        self.pruned_seqs: list[int] = []
        self.unprovable: list[int] = []
        self._fast = LeafRecomputer(header.tenant_id).verified_leaf
        try:
            self._tenant_json = orjson.dumps(header.tenant_id).decode()
        except orjson.JSONEncodeError:  # no event can be of a tenant with no JSON
            self._tenant_json = ""
        #: the C part's batch of common lines: only when the filter selects everything
        self._native = (
            _native.bundle_events if not header.filter.clauses and self._tenant_json else None
        )
        self._paths = frozenset(c.path for c in header.filter.clauses)
        self._verdict = header.filter.verdict

    def report(self) -> BundleReport:
        h = self.header
        return BundleReport(
            h.tenant_id, h.checkpoint, h.filter, h.start, h.end, self.events, self.excluded,
            self.redacted_fields, self.pruned, tuple(self.pruned_seqs[:_SAMPLE]),
            tuple(self.unprovable),
        )  # fmt: skip

    def leaves(self, lines: Iterable[bytes | str] | memoryview) -> list[bytes]:
        """The leaf hashes of the next ``lines``; raises at the first leaf that fails.

        The common cases are taken inline — an unredacted event when the filter selects
        everything (the C part's whole leaf), and a leaf input whose leaf is its claimed
        hash — and everything else, or anything odd, goes to the exact checks, which accept
        it or name the seq.
        """
        seq, end = self.header.start + self.count, self.header.end
        if isinstance(lines, memoryview):  # whole lines of a read (``_batches``)
            chunk = _native.bundle_chunk if self._native is not None else None
            done = chunk and chunk(
                lines, seq, end - seq, self.header.tenant_id, self._tenant_json, orjson.loads
            )
            if not done:  # no C part, a filter, or lines past the range's end
                return self.leaves(bytes(lines).split(b"\n")[:-1])
            items, declined = done
            self.events += len(items) - len(declined)
            self.count += len(items) - len(declined)  # _loop counts the declined lines
            for i in declined:
                (items[i],) = self._loop([items[i]], seq + i)
            return items
        if self._native is not None and type(lines) is list and seq + len(lines) <= end:
            # The C part takes each common line whole (parse, shape, commitments, leaf);
            # what it declines goes through the loop below, one line at a time.
            got = self._native(lines, seq, self.header.tenant_id, self._tenant_json, orjson.loads)
            declined = [i for i, leaf in enumerate(got) if leaf is None] if None in got else []
            self.events += len(got) - len(declined)
            self.count += len(got) - len(declined)  # _loop counts the declined lines
            for i in declined:
                (got[i],) = self._loop([lines[i]], seq + i)
            return got  # type: ignore[return-value]  # no None left
        return self._loop(lines, seq)

    def _loop(self, lines: Iterable[bytes | str], seq: int) -> list[bytes]:
        fast, quick, loads = self._fast, self._quick_leaf, orjson.loads
        everything = not self._paths
        end = self.header.end
        out: list[bytes] = []
        append = out.append
        for line in lines:
            if seq >= end:
                raise SequenceError(f"the bundle has lines past the end of its range at seq {seq}")
            try:
                record = loads(line)
                event = record.get("event")
                if event is not None:
                    leaf = (
                        fast(event, record["salts"])
                        if everything and event["seq"] == seq and not record["redacted"]
                        else None
                    )
                    if leaf is not None:
                        self.events += 1
                else:
                    leaf = quick(record, seq)
            except (LookupError, TypeError, ValueError, AttributeError):
                leaf = None
            append(leaf or self._exact(line, seq))
            seq += 1
            self.count += 1
        return out

    def _exact(self, line: bytes | str, seq: int) -> bytes:
        record = _json(line, seq - self.header.start + 2)
        if "event" in record:
            return self._event(record, seq)
        if record.get("pruned") is True:
            return self._pruned(record, seq)
        return self._excluded(record, seq)

    def _quick_leaf(self, record: dict[str, Any], seq: int) -> bytes | None:
        """An excluded leaf's hash in the common case, or None for the exact path to judge.

        Sound for the same reason as the exact path: the leaf input hashed is the canonical
        JSON of exactly the commitments the filter is judged on, and the root check decides.
        """
        if record["seq"] != seq or "pruned" in record:
            return None
        commitments, disclosed = record["commitments"], record["disclosed"]
        known = {}
        for path, item in disclosed.items():
            value = item["value"]
            if type(value) is not str:
                return None
            salt = a2b_base64(item["salt"], strict_mode=True)
            if len(salt) != SALT_SIZE:
                return None
            if sha256(salt + orjson.dumps(value)).hexdigest() != commitments[path]:
                return None
            known[path] = value
        if self._verdict(known, commitments) is not False:
            return None
        document = {
            "commitments": commitments, "id": record["id"], "received_at": record["received_at"],
            "seq": seq, "tenant_id": self.header.tenant_id, "v": LEAF_VERSION,
        }  # fmt: skip
        text = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        leaf = sha256(b"\x00" + text).digest()
        if leaf.hex() != record["hash"]:
            return None
        self.excluded += 1
        return leaf

    def _event(self, record: dict[str, Any], seq: int) -> bytes:
        event, salts, redacted = record["event"], record.get("salts"), record.get("redacted")
        if not isinstance(event, dict) or not isinstance(salts, dict):
            raise IntegrityError(f"seq {seq}: malformed event record")
        if not isinstance(redacted, dict):
            raise IntegrityError(f"seq {seq}: malformed event record")
        if event.get("seq") != seq or event.get("tenant_id") != self.header.tenant_id:
            raise SequenceError(
                f"expected seq {seq} of tenant {self.header.tenant_id}, found event"
                f" {event.get('id')} with seq {event.get('seq')} of {event.get('tenant_id')}"
                " (an event is missing, duplicated or out of order)"
            )
        leaf = None if redacted else self._fast(event, salts)
        if leaf is None:
            leaf = _leaf(event, salts, redacted)
            if event.get("hash") not in (None, leaf.hex()):
                raise LeafMismatchError(
                    event.get("id", "?"), seq, "content does not match its hash"
                )
        if not self._matches(event, salts, redacted):
            raise IntegrityError(
                f"seq {seq}: event {event.get('id')} is in the bundle but does not match its"
                f" filter ({self.header.filter.describe()})"
            )
        self.events += 1
        self.redacted_fields += len(redacted)
        return leaf

    def _matches(
        self, event: dict[str, Any], salts: dict[str, Any], redacted: dict[str, Any]
    ) -> bool:
        """Whether an included event matches the filter (its leaf already verified)."""
        paths = self._paths
        if not paths:
            return True
        known = {p: v for p in paths if p in salts and (v := path_value(event, p)) is not ABSENT}
        committed = known.keys() | (redacted.keys() & paths)
        return self.header.filter.verdict(known, committed) is True

    def _pruned(self, record: dict[str, Any], seq: int) -> bytes:
        self._seq(record, seq)
        try:
            leaf = bytes.fromhex(record["hash"])
        except (KeyError, TypeError, ValueError):
            leaf = b""
        if len(leaf) != RFC9162.size:
            raise IntegrityError(f"seq {seq}: a pruned leaf without a valid hash")
        self.pruned += 1
        if len(self.pruned_seqs) < _SAMPLE:
            self.pruned_seqs.append(seq)
        return leaf

    def _seq(self, record: dict[str, Any], seq: int) -> None:
        if record.get("seq") != seq:
            raise SequenceError(
                f"expected seq {seq}, found seq {record.get('seq')} (a leaf is missing,"
                " duplicated or out of order)"
            )

    def _excluded(self, record: dict[str, Any], seq: int) -> bytes:
        self._seq(record, seq)
        event_id, received_at = record.get("id"), record.get("received_at")
        commitments, disclosed = record.get("commitments"), record.get("disclosed", {})
        if not (isinstance(commitments, dict) and isinstance(disclosed, dict)):
            raise IntegrityError(f"seq {seq}: malformed leaf record")
        known = {p: _disclosed(seq, p, d, commitments) for p, d in disclosed.items()}
        verdict = self.header.filter.verdict(known, commitments.keys())
        if verdict is True:
            raise IntegrityError(
                f"seq {seq}: event {event_id} matches the filter by its disclosed fields, but"
                " the bundle leaves it out"
            )
        if verdict is None:
            self.unprovable.append(seq)
        else:
            self.excluded += 1
        leaf = self._leaf_of(seq, event_id, received_at, commitments)
        if record.get("hash") not in (None, leaf.hex()):
            raise LeafMismatchError(str(event_id), seq, "leaf input does not match its hash")
        return leaf

    def _leaf_of(
        self, seq: int, event_id: Any, received_at: Any, commitments: dict[str, Any]
    ) -> bytes:
        try:
            raw = {p: bytes.fromhex(c) for p, c in commitments.items()}
            return leaf_hash(leaf_input(self.header.tenant_id, seq, event_id, received_at, raw))
        except (ValueError, TypeError, ValidationFailedError) as exc:
            message = exc.message if isinstance(exc, ValidationFailedError) else str(exc)
            raise LeafMismatchError(
                str(event_id), seq, f"malformed leaf input: {message}"
            ) from None


def _disclosed(seq: int, path: str, item: Any, commitments: Mapping[str, Any]) -> Any:
    """A disclosed value, once it is shown to be the one its leaf commits to."""
    if not isinstance(item, dict) or "value" not in item or path not in commitments:
        raise FieldMismatchError(path, f"seq {seq}: disclosed without a commitment")
    try:
        salt = base64.b64decode(item["salt"], validate=True)
        digest = sha256(salt + jcs(item["value"])).hexdigest()
    except (KeyError, TypeError, ValueError, binascii.Error, ValidationFailedError):
        raise FieldMismatchError(path, f"seq {seq}: malformed disclosed value") from None
    if len(salt) != SALT_SIZE or digest != commitments[path]:
        raise FieldMismatchError(
            path, f"seq {seq}: the disclosed value does not match its commitment"
        )
    return item["value"]
