"""Verifiable bundles: a selection's events with the proof that none was left out.

A bundle (``trailkeep-bundle/v1``, JSON lines; docs/integrity.md) covers the leaves
``[a, b)`` of a tenant's log under a signed checkpoint of size ``N >= b``. Its header holds
the selection, its filter as clauses on committed fields (``model.disclosure``), the
checkpoint, the public key, the hashes of the complete subtrees of ``[0, a)`` and the RFC 9162
consistency proof from ``b`` to ``N``. Then comes one line per leaf of the range, in ``seq``
order:

- a matching event, as a dump carries it: ``{"event", "salts", "redacted"}``;
- any other event as its leaf input — ``{"seq", "id", "received_at", "commitments", "hash"}``
  — plus ``disclosed``: the value and salt of the one field that shows it fails the filter
  (nothing, when the commitments show the field is absent), or ``erased``: the fields the
  filter needs that were erased, when no disclosure can tell;
- a pruned leaf (content gone by retention) as ``{"seq", "id", "hash", "pruned": true}``.

A verifier recomputes every leaf, folds them onto the left subtrees, and proves the result a
prefix of the checkpoint's tree: so it knows every leaf of the range, and that each one left
out does not match.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from trailkeep.errors import IntegrityError, InvalidInputError
from trailkeep.merkle import subtree_ids
from trailkeep.model.commitments import commit_fields, field_paths
from trailkeep.model.disclosure import BUNDLE_FORMAT, BundleFilter, Clause
from trailkeep.model.evidence import encode_salts, event_commitments
from trailkeep.query.ast import And, Node, Or, Term, Values
from trailkeep.query.filters import FILTER_COLUMNS, filter_node
from trailkeep.query.unparse import unparse
from trailkeep.service.dump import evidence_record
from trailkeep.service.log import LogService
from trailkeep.service.selection import Selection, search_tree
from trailkeep.storage.base import Evidence, Store, StoredCheckpoint

__all__ = ["BUNDLE_FORMAT", "BundleSpec", "bundle_filter", "bundle_lines"]

_CHUNK: Final = 5000
#: Search fields a bundle can decide: each maps to one committed path holding a string.
_FIELDS: Final[Mapping[str, str]] = {
    **{name: name for name in FILTER_COLUMNS},
    "client_id": "source.client_id",
    "source.client_id": "source.client_id",
    "timestamp": "timestamp",
}
_SUPPORTED: Final = (
    "a bundle proves completeness only for filters on one committed field each, ANDed:"
    " action, category, outcome, actor.id, actor.email, actor.type, target.id, target.type,"
    " source.ip, client_id, session_id, request_id, trace_id (equal to a value, or OR'ed"
    " values), and timestamp (start/end, or comparisons)"
)


def bundle_filter(selection: Selection, now: datetime) -> BundleFilter:
    """The clauses a bundle of ``selection`` proves, relative times read against ``now``.

    Raises:
        InvalidInputError: a filter or query term a bundle cannot decide from one committed
            field; the message names it and lists what is supported.
        QuerySyntaxError: ``q`` does not parse.
    """
    clauses: list[Clause] = []
    structured = filter_node(selection.filters)
    search = search_tree(selection.q, now)
    for node in (structured, search):
        if node is not None:
            clauses += _clauses(node)
    if selection.start is not None:
        clauses.append(Clause("timestamp", op=">=", bound=selection.start))
    if selection.end is not None:
        clauses.append(Clause("timestamp", op="<", bound=selection.end))
    return BundleFilter(tuple(clauses))


def _clauses(node: Node) -> list[Clause]:
    if isinstance(node, And):
        return [clause for child in node.children for clause in _clauses(child)]
    name = ".".join(node.field) if isinstance(node, Values) else ""
    if isinstance(node, Values) and name in _FIELDS and all(type(v) is str for v in node.values):
        return [Clause(_FIELDS[name], values=tuple(map(str, node.values)))]
    if isinstance(node, Term) and _plain(node):
        return [_term(node)]
    if isinstance(node, Or) and node.children and all(_plain(c) for c in node.children):
        terms = [_term(c) for c in node.children if isinstance(c, Term)]
        if len({t.path for t in terms}) == 1 and all(t.values is not None for t in terms):
            return [Clause(terms[0].path, values=tuple(v for t in terms for v in t.values or ()))]
    raise InvalidInputError(f"{_SUPPORTED}; cannot bundle {_shown(node)!r}")


def _plain(node: Node) -> bool:
    """A term on a supported field that means equality or (for timestamp) an order."""
    if not isinstance(node, Term) or node.field is None or node.prefix:
        return False
    name = ".".join(node.field)
    return name in _FIELDS and (node.op == ":" or name == "timestamp")


def _term(term: Term) -> Clause:
    path = _FIELDS[".".join(term.field or ())]
    if term.op == ":":
        return Clause(path, values=(term.value,))
    return Clause(path, op=term.op, bound=term.value)


def _shown(node: Node) -> str:
    if isinstance(node, Values):
        return f"{'.'.join(node.field)}={','.join(map(str, node.values))}"
    return unparse(node)


@dataclass(frozen=True, slots=True)
class BundleSpec:
    """What a bundle covers.

    Attributes:
        start, end: the seq range ``[start, end)``; ``end <= checkpoint.size``.
        selection: the filters as the user gave them (for the header, to read).
        filter: what the bundle proves (``bundle_filter`` of the selection).
    """

    tenant_id: str
    checkpoint: StoredCheckpoint
    start: int
    end: int
    selection: Selection
    filter: BundleFilter
    created_at: str


def bundle_lines(store: Store, log: LogService, spec: BundleSpec) -> Iterator[bytes]:
    """The bundle's file: a header line, then one line per leaf of the range, in seq order.

    Raises:
        InvalidInputError: the range does not lie inside the checkpoint.
    """
    if not 0 <= spec.start <= spec.end <= spec.checkpoint.size:
        raise InvalidInputError(
            f"a bundle's seq range needs 0 <= start <= end <= {spec.checkpoint.size} (the"
            f" checkpoint size), got [{spec.start}, {spec.end})"
        )
    yield orjson.dumps(_header(store, log, spec)) + b"\n"
    for first in range(spec.start, spec.end, _CHUNK):
        last = min(first + _CHUNK, spec.end)
        yield b"".join(orjson.dumps(r) + b"\n" for r in _records(store, spec, first, last))


def _header(store: Store, log: LogService, spec: BundleSpec) -> dict[str, Any]:
    left = store.read_nodes(spec.tenant_id, subtree_ids(spec.start))
    right = log.consistency_proof(spec.tenant_id, spec.end, spec.checkpoint.size)
    return {
        "format": BUNDLE_FORMAT,
        "tenant_id": spec.tenant_id,
        "created_at": spec.created_at,
        "range": [spec.start, spec.end],
        "selection": spec.selection.to_json(),
        "filter": spec.filter.to_json(),
        "checkpoint": spec.checkpoint.note,
        "key": log.signer.verifier().key_string(),
        "left": [_b64(h) for h in left],
        "right": [_b64(h) for h in right],
    }


def _records(store: Store, spec: BundleSpec, first: int, last: int) -> Iterator[dict[str, Any]]:
    found = {e.event.seq: e for e in store.scan_evidence(spec.tenant_id, first, last)}
    hashes: list[bytes] = []
    if len(found) < last - first:  # pruned leaves: only the tree knows them
        hashes = store.leaf_hashes(spec.tenant_id, first, last)
        if len(hashes) != last - first:
            raise IntegrityError(f"leaf hashes of [{first}, {last}) are missing from the tree")
    for seq in range(first, last):
        evidence = found.get(seq)
        if evidence is None:
            yield {"seq": seq, "hash": hashes[seq - first].hex(), "pruned": True}
        else:
            yield _record(spec.filter, evidence)


def _record(filt: BundleFilter, evidence: Evidence) -> dict[str, Any]:
    """An event's line: the event if it matches, else its leaf input and a disclosure."""
    content, salts = evidence.event.content, evidence.salts
    values = field_paths(content)
    known = {c.path: values[c.path] for c in filt.clauses if c.path in salts and c.path in values}
    if filt.verdict(known, values.keys()) is True:
        return evidence_record(evidence)
    event = evidence.event
    record: dict[str, Any] = {
        "seq": event.seq,
        "id": event.id,
        "received_at": event.received_at,
        "commitments": {p: c.hex() for p, c in _commitments(evidence, values).items()},
    }
    if event.leaf_hash is not None:
        record["hash"] = event.leaf_hash.hex()
    shown = filt.witness(values, salts.keys())
    if shown is None:
        record["erased"] = filt.erased(salts.keys(), values.keys())
        return record
    encoded = encode_salts({p: salts[p] for p in shown})
    record["disclosed"] = {p: {"value": values[p], "salt": encoded[p]} for p in shown}
    return record


def _commitments(evidence: Evidence, values: dict[str, Any]) -> dict[str, bytes]:
    """The event's commitments by path, sorted: for an unerased event, in one call to the
    ingest fast path fed the stored salts (in sorted path order, as it draws them)."""
    salts = evidence.salts
    if not evidence.redacted and salts.keys() == values.keys():
        _, commitments = commit_fields(values, b"".join(salts[p] for p in sorted(values)))
        return commitments
    content = evidence.event.content
    return dict(sorted(event_commitments(content, salts, evidence.redacted).items()))


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")
