"""Exports: a snapshot of a tenant's selected events, downloadable as JSON lines, JSON or CSV.

An export needs no table and no background job. Its id is a self-contained token — the
tenant, the selection, the format, the log size at creation (the *snapshot*) and the creation
time, compressed, base64url-encoded and authenticated with HMAC-SHA256 under a key derived from
the checkpoint signing key. Every server process sharing that key can therefore serve any
export, a tenant can never open another tenant's export (the token names its tenant, and nobody
can forge one), and a download is stable: it streams, page by page in log order, exactly the
events with ``seq`` below the snapshot that the selection matches. Fields erased since the
export was created read as erased, as everywhere.

With integrity on, creating an export first signs any pending checkpoint and snapshots at the
latest checkpoint, so a JSON-lines export carries the signed checkpoint its events are proven
against — and an export of everything is byte-for-byte a ``trailkeep dump`` (format
``trailkeep-dump/v1``) that ``trailkeep verify dump`` checks completely.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import io
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import orjson

from trailkeep.errors import InvalidInputError, NotFoundError
from trailkeep.merkle import Signer
from trailkeep.model.event import StoredEvent
from trailkeep.model.timeparse import format_time, parse_time, utcnow
from trailkeep.query.ast import Node
from trailkeep.service.bundles import BundleSpec, bundle_filter, bundle_lines
from trailkeep.service.dump import DUMP_FORMAT, evidence_record
from trailkeep.service.log import LogService
from trailkeep.service.selection import Selection
from trailkeep.storage.base import Evidence, Store

__all__ = ["CSV_COLUMNS", "EXPORT_FORMAT", "ExportFormat", "ExportJob", "ExportService"]

ExportFormat = Literal["jsonl", "json", "csv", "bundle"]
#: The header ``format`` of a JSON-lines export of a selection (a dump when it selects all).
EXPORT_FORMAT: Final = "trailkeep-export/v1"
MEDIA_TYPES: Final[Mapping[str, str]] = {
    "jsonl": "application/x-ndjson",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "bundle": "application/x-ndjson",
}
#: CSV columns: the server fields, each object's sub-fields, then JSON-encoded free-form fields.
CSV_COLUMNS: Final = (
    "id", "seq", "timestamp", "received_at", "action", "category", "outcome",
    "actor.id", "actor.type", "actor.name", "actor.email", "actor.role",
    "target.id", "target.type", "target.name", "target.org_id",
    "source.ip", "source.user_agent", "source.client_id", "source.service",
    "session_id", "request_id", "trace_id", "message", "old", "new", "metadata",
    "idempotency_key", "hash",
)  # fmt: skip
_PREFIX = "exp_"
_MAX_TOKEN = 4096
_PAGE = 1000
_COUNTS_KEPT = 1024
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class ExportJob:
    """An export, as its id encodes it.

    Attributes:
        size: the snapshot: only events with ``seq < size`` are exported.
        created_at: when the export was created (fixed-width RFC 3339).
        seq_range: a bundle's seq range ``[start, end)``, if narrower than ``[0, size)``.
    """

    id: str
    tenant_id: str
    selection: Selection
    format: ExportFormat
    size: int
    created_at: str
    seq_range: tuple[int, int] | None = None

    @property
    def filename(self) -> str:
        stamp = self.created_at[:19].replace("-", "").replace(":", "")
        return f"{self.tenant_id}-export-{stamp}Z.{self.format}"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Tokens:
    """Export ids: ``exp_`` + base64url(zlib(JSON)) + ``.`` + base64url(HMAC-SHA256)[:16 bytes]."""

    def __init__(self, signer: Signer) -> None:
        # A key of its own, derived from (never equal to) the checkpoint signing seed.
        seed = signer.private_key.private_bytes_raw()
        self._key = hmac.new(seed, b"trailkeep export id v1", hashlib.sha256).digest()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest()[:16])

    def issue(self, job: dict[str, Any]) -> str:
        payload = _b64(zlib.compress(orjson.dumps(job), 9))
        token = f"{_PREFIX}{payload}.{self._mac(payload)}"
        if len(token) > _MAX_TOKEN:
            raise InvalidInputError(
                "the export's filters are too long to fit its id; use fewer or shorter values"
            )
        return token

    def open(self, token: str) -> dict[str, Any] | None:
        """The job a token encodes, or None if this server did not issue it."""
        payload, _, mac = token.removeprefix(_PREFIX).partition(".")
        if not token.startswith(_PREFIX) or not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            data = orjson.loads(zlib.decompress(_unb64(payload)))
        except (ValueError, binascii.Error, zlib.error, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) and data.get("v") == 1 else None


class ExportService:
    """Create, describe and stream exports.

    Args:
        store: where the events are.
        log: signs the checkpoint an export snapshots at; its key also keys export ids.
    """

    def __init__(self, store: Store, log: LogService) -> None:
        self._store = store
        self._log = log
        self._tokens = _Tokens(log.signer)
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._counts_lock = threading.Lock()

    # -- ids -------------------------------------------------------------------------------

    def create(
        self,
        tenant_id: str,
        selection: Selection,
        fmt: ExportFormat,
        seq_range: tuple[int | None, int | None] = (None, None),
    ) -> ExportJob:
        """A new export of ``selection`` at the current log size (or latest checkpoint).

        Args:
            seq_range: a bundle's ``[start, end)`` (either None: from 0, up to the snapshot).

        Raises:
            InvalidInputError: a bundle of a filter it cannot prove, or a bad seq range.
        """
        now = utcnow()
        self._compile(selection, now)  # a query that does not parse is refused now
        size = self._snapshot(tenant_id)
        created_at = format_time(now)
        job: dict[str, Any] = {
            "v": 1, "t": tenant_id, "f": fmt, "n": size, "c": created_at,
            "q": selection.to_json(),
        }  # fmt: skip
        bounds = None
        if fmt == "bundle":
            bundle_filter(selection, now)
            bounds = job["r"] = _seq_range(seq_range, size)
        elif seq_range != (None, None):
            raise InvalidInputError("seq_start and seq_end apply to format=bundle only")
        token = self._tokens.issue(job)
        return ExportJob(token, tenant_id, selection, fmt, size, created_at, bounds)

    def _snapshot(self, tenant_id: str) -> int:
        self._log.sign_pending()
        checkpoint = self._store.latest_checkpoint(tenant_id)
        if checkpoint is not None:
            return checkpoint.size
        return self._store.log_size(tenant_id)

    def get(self, tenant_id: str, export_id: str) -> ExportJob:
        """The export an id names; ``NotFoundError`` for a forged id or another tenant's."""
        data = self._tokens.open(export_id)
        if data is None or data.get("t") != tenant_id:
            raise NotFoundError(f"no export {export_id[:24]}... in this tenant")
        query = data["q"]
        selection = Selection(query["filters"], query["start"], query["end"], query.get("q"))
        bounds = tuple(data["r"]) if "r" in data else None
        return ExportJob(export_id, tenant_id, selection, data["f"], data["n"], data["c"], bounds)

    # -- counting --------------------------------------------------------------------------

    def count(self, job: ExportJob, *, compute: bool) -> int | None:
        """How many events the export holds: known at once for an export of everything,
        otherwise counted by one walk of the snapshot when ``compute`` (then remembered)."""
        start, end = job.seq_range or (0, job.size)
        if job.selection.is_everything:
            return end - start  # every position of the range
        with self._counts_lock:
            if job.id in self._counts:
                self._counts.move_to_end(job.id)
                return self._counts[job.id]
        if not compute:
            return None
        total = sum(len(page) for page in self._pages(job))
        with self._counts_lock:
            self._counts[job.id] = total
            while len(self._counts) > _COUNTS_KEPT:
                self._counts.popitem(last=False)
        return total

    # -- content ---------------------------------------------------------------------------

    def lines(self, job: ExportJob) -> Iterator[bytes]:
        """The export's file, a line (or a few) at a time, read from the store as it goes."""
        if job.format == "jsonl":
            return self._jsonl(job)
        if job.format == "json":
            return self._json(job)
        if job.format == "bundle":
            return self._bundle(job)
        return self._csv(job)

    def _bundle(self, job: ExportJob) -> Iterator[bytes]:
        checkpoint = self._store.checkpoint_at(job.tenant_id, job.size)
        if checkpoint is None:
            raise NotFoundError(f"no signed checkpoint of size {job.size} to prove a bundle by")
        created = parse_time(job.created_at)
        assert created is not None
        start, end = job.seq_range or (0, job.size)
        spec = BundleSpec(
            job.tenant_id, checkpoint, start, end, job.selection,
            bundle_filter(job.selection, created), job.created_at,
        )  # fmt: skip
        return bundle_lines(self._store, self._log, spec)

    def _compile(self, selection: Selection, now: datetime) -> Node | None:
        """The selection's tree, relative times (``now-1h``) fixed at the export's creation."""
        return selection.condition(now)

    def _pages(self, job: ExportJob) -> Iterator[list[StoredEvent]]:
        created = parse_time(job.created_at)
        assert created is not None
        search = self._compile(job.selection, created)
        start, end = job.seq_range or (0, job.size)
        after = start - 1
        while after < end - 1:
            query = job.selection.in_log_order(
                after_seq=after, limit=_PAGE, max_seq=end - 1, where=search
            )
            events = self._store.list_events(job.tenant_id, query).events
            if not events:
                return
            yield events
            after = events[-1].seq

    def _header(self, job: ExportJob) -> dict[str, Any]:
        checkpoint = self._store.checkpoint_at(job.tenant_id, job.size) if job.size else None
        complete = job.selection.is_everything and checkpoint is not None
        return {
            "format": DUMP_FORMAT if complete else EXPORT_FORMAT,
            "tenant_id": job.tenant_id,
            "checkpoint": checkpoint.note if checkpoint else None,
            "size": job.size,
            "created_at": job.created_at,
            **job.selection.to_json(),
        }

    def _jsonl(self, job: ExportJob) -> Iterator[bytes]:
        header = self._header(job)
        yield orjson.dumps(header) + b"\n"
        if header["format"] == DUMP_FORMAT:
            for start in range(0, job.size, _PAGE):
                end = min(start + _PAGE, job.size)
                chunk = self._store.scan_evidence(job.tenant_id, start, end)
                yield b"".join(orjson.dumps(evidence_record(e)) + b"\n" for e in chunk)
            return
        for page in self._pages(job):
            records = self._evidence(job.tenant_id, page)
            yield b"".join(orjson.dumps(evidence_record(e)) + b"\n" for e in records)

    def _evidence(self, tenant_id: str, events: list[StoredEvent]) -> list[Evidence]:
        """Salts for a page: one range read when the page is dense in the log, else by id."""
        first, last = events[0].seq, events[-1].seq
        if last - first < 4 * len(events):
            by_seq = {e.event.seq: e for e in self._store.scan_evidence(tenant_id, first, last + 1)}
            return [by_seq[e.seq] for e in events if e.seq in by_seq]
        found = (self._store.get_evidence(tenant_id, e.id) for e in events)
        return [e for e in found if e is not None]

    def _json(self, job: ExportJob) -> Iterator[bytes]:
        header = self._header(job)
        del header["format"]
        yield b'{"export":' + orjson.dumps(header) + b',"events":['
        sep = b"\n"
        for page in self._pages(job):
            yield sep + b",\n".join(orjson.dumps(e.to_wire()) for e in page)
            sep = b",\n"
        yield b"\n]}\n"

    def _csv(self, job: ExportJob) -> Iterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for page in self._pages(job):
            writer.writerows(csv_row(e.to_wire()) for e in page)
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue().encode()


def _seq_range(bounds: tuple[int | None, int | None], size: int) -> tuple[int, int]:
    start, end = bounds[0] or 0, size if bounds[1] is None else bounds[1]
    if not 0 <= start <= end <= size:
        raise InvalidInputError(
            f"a bundle's seq range needs 0 <= seq_start <= seq_end <= {size} (the log size at"
            f" export), got [{start}, {end})"
        )
    return start, end


def csv_row(event: Mapping[str, Any]) -> list[str]:
    """One event as CSV cells, in ``CSV_COLUMNS`` order; objects and lists as JSON."""
    row = []
    for column in CSV_COLUMNS:
        parent, _, child = column.partition(".")
        value = event.get(parent)
        if child:
            value = value.get(child) if isinstance(value, dict) else None
        row.append(_cell(value))
    return row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text  # shown as text, never evaluated; the JSON formats keep the value as is
    return text
