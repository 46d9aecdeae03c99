"""Exports: a snapshot of a tenant's selected events, downloadable as JSON lines, JSON or CSV.

An export needs no table and no background job. Its id is a self-contained token — the
tenant, the selection, the format, the log size at creation (the *snapshot*) and the creation
time, compressed, base64url-encoded and authenticated with HMAC-SHA256 under a key derived from
the checkpoint signing key. Every server process sharing that key can therefore serve any
export, a tenant can never open another tenant's export (the token names its tenant, and nobody
can forge one), and a download is stable: it streams, page by page in log order, exactly the
events with ``seq`` below the snapshot that the selection matches. Fields erased since the
export was created read as erased, as everywhere.

Anyone holding an export's *download link* (:meth:`ExportService.link`) may download it
without an API token: the link carries an expiry time and an HMAC-SHA256 (256 bits) of the
export id and that time, under the same derived key, so it cannot be guessed, altered to
name another export (or tenant), or used after it expires.

Creating an export is an audit event (``export.create``, ``service.admin_trail``). The
process serving a download counts the events it has written, which ``GET /v1/exports/{id}``
reports as the export's progress.

With integrity on, creating an export first signs any pending checkpoint and snapshots at the
latest checkpoint, so a JSON-lines export carries the signed checkpoint its events are proven
against — and an export of everything is byte-for-byte a ``trailkeep dump`` (format
``trailkeep-dump/v1``) that ``trailkeep verify dump`` checks completely.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

from trailkeep.errors import AuthenticationError, InvalidInputError, NotFoundError
from trailkeep.merkle import Signer
from trailkeep.model.event import StoredEvent
from trailkeep.model.timeparse import format_time, parse_time, utcnow
from trailkeep.query.ast import Node
from trailkeep.service.admin_trail import Actor, record_admin_event
from trailkeep.service.bundles import BundleSpec, bundle_filter, bundle_lines
from trailkeep.service.dump import DUMP_FORMAT, evidence_record, range_records
from trailkeep.service.log import LogService
from trailkeep.service.sealed import Sealer, b64
from trailkeep.service.selection import Selection
from trailkeep.storage.base import Evidence, Store

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_LINK_TTL",
    "EXPORT_FORMAT",
    "MEDIA_TYPES",
    "WRITERS",
    "DownloadLink",
    "ExportFormat",
    "ExportJob",
    "ExportProgress",
    "ExportService",
]

ExportFormat = Literal["jsonl", "json", "csv", "bundle"]
#: The header ``format`` of a JSON-lines export of a selection (a dump when it selects all).
EXPORT_FORMAT: Final = "trailkeep-export/v1"
MEDIA_TYPES: dict[str, str] = {
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
#: Seconds a download link stays valid unless the server is told otherwise.
DEFAULT_LINK_TTL: Final = 3600.0
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


@dataclass(frozen=True, slots=True)
class DownloadLink:
    """A capability to download one export without an API token, until ``expires_at``.

    Attributes:
        path: the server-relative URL (``/v1/exports/{id}/download?expires=...&sig=...``).
    """

    path: str
    expires_at: str


@dataclass(frozen=True, slots=True)
class ExportProgress:
    """How far this process got writing an export's file, for ``GET /v1/exports/{id}``.

    Attributes:
        written: events written by the latest (or running) download.
        state: ``not_started``, ``running`` or ``complete``.
        downloads: downloads started in this process.
    """

    written: int
    state: Literal["not_started", "running", "complete"]
    downloads: int


class _Tokens:
    """Export ids (``exp_``, sealed: ``service.sealed``) and their download links' signatures."""

    def __init__(self, signer: Signer) -> None:
        self._sealer = Sealer(signer, b"trailkeep export id v1", _PREFIX)

    def issue(self, job: dict[str, Any]) -> str:
        token = self._sealer.seal(job)
        if len(token) > _MAX_TOKEN:
            raise InvalidInputError(
                "the export's filters are too long to fit its id; use fewer or shorter values"
            )
        return token

    def link_sig(self, export_id: str, expires: int) -> str:
        """The full HMAC-SHA256 (256 bits) binding an export id to a link's expiry."""
        message = f"trailkeep export link v1\n{export_id}\n{expires}".encode()
        return b64(hmac.new(self._sealer.key, message, hashlib.sha256).digest())

    def open(self, token: str) -> dict[str, Any] | None:
        """The job a token encodes, or None if this server did not issue it."""
        return self._sealer.open(token)


class ExportService:
    """Create, describe and stream exports.

    Args:
        store: where the events are.
        log: signs the checkpoint an export snapshots at; its key also keys export ids.
        link_ttl: seconds a download link stays valid.
    """

    def __init__(
        self, store: Store, log: LogService, *, link_ttl: float = DEFAULT_LINK_TTL
    ) -> None:
        self._store = store
        self._log = log
        self._tokens = _Tokens(log.signer)
        self.link_ttl = link_ttl
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._counts_lock = threading.Lock()
        self._progress: OrderedDict[str, ExportProgress] = OrderedDict()

    # -- ids -------------------------------------------------------------------------------

    def create(
        self,
        tenant_id: str,
        selection: Selection,
        fmt: ExportFormat,
        actor: Actor,
        seq_range: tuple[int | None, int | None] = (None, None),
    ) -> ExportJob:
        """A new export of ``selection`` at the current log size (or latest checkpoint),
        recorded as ``export.create`` in the tenant's log (after the snapshot, so outside it).

        Args:
            seq_range: a bundle's ``[start, end)`` (either None: from 0, up to the snapshot).

        Raises:
            InvalidInputError: an unknown format, a bundle of a filter it cannot prove, or a
                bad seq range.
        """
        if fmt not in WRITERS:
            raise InvalidInputError(f"unknown export format {fmt!r}; use {', '.join(WRITERS)}")
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
        export = ExportJob(
            self._tokens.issue(job), tenant_id, selection, fmt, size, created_at, bounds
        )
        metadata: dict[str, Any] = {"format": fmt, "size": size, **selection.to_json()}
        if bounds is not None:
            metadata["seq_range"] = list(bounds)
        record_admin_event(
            self._store, tenant_id, "export.create", actor, {"id": export.id, "type": "export"},
            metadata,
        )  # fmt: skip
        return export

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

    # -- download links --------------------------------------------------------------------

    def link(self, job: ExportJob) -> DownloadLink:
        """A fresh download link for ``job``, valid for ``link_ttl`` seconds."""
        expires = int(time.time() + self.link_ttl)
        sig = self._tokens.link_sig(job.id, expires)
        at = format_time(datetime.fromtimestamp(expires, UTC))
        return DownloadLink(f"/v1/exports/{job.id}/download?expires={expires}&sig={sig}", at)

    def open_link(self, export_id: str, expires: int, sig: str) -> ExportJob:
        """The export a download link names, checked before anything else is read.

        Raises:
            AuthenticationError: the signature does not match (a guessed or altered link,
                ``INVALID_LINK``) or the link has expired (``LINK_EXPIRED``).
        """
        if not hmac.compare_digest(
            sig.encode(), self._tokens.link_sig(export_id, expires).encode()
        ):
            raise AuthenticationError(
                "invalid download link: ask for a new one (GET /v1/exports/{id})",
                code="INVALID_LINK",
            )
        if expires <= time.time():
            at = format_time(datetime.fromtimestamp(expires, UTC))
            raise AuthenticationError(
                f"this download link expired at {at}; ask for a new one (GET /v1/exports/{{id}})",
                code="LINK_EXPIRED",
            )
        data = self._tokens.open(export_id)
        if data is None:  # a link can only be issued for an export id we issued
            raise NotFoundError(f"no export {export_id[:24]}...")
        return self.get(data["t"], export_id)

    # -- progress --------------------------------------------------------------------------

    def progress(self, job: ExportJob) -> ExportProgress:
        """How far this process got writing ``job``'s file."""
        with self._counts_lock:
            return self._progress.get(job.id, ExportProgress(0, "not_started", 0))

    def _set_progress(self, job: ExportJob, written: int, *, done: bool, start: bool) -> None:
        with self._counts_lock:
            old = self._progress.pop(job.id, ExportProgress(0, "not_started", 0))
            downloads = old.downloads + (1 if start else 0)
            self._progress[job.id] = ExportProgress(
                written, "complete" if done else "running", downloads
            )
            while len(self._progress) > _COUNTS_KEPT:
                self._progress.popitem(last=False)

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
        total = sum(len(page) for page in self.pages(job))
        with self._counts_lock:
            self._counts[job.id] = total
            while len(self._counts) > _COUNTS_KEPT:
                self._counts.popitem(last=False)
        return total

    # -- content ---------------------------------------------------------------------------

    def lines(self, job: ExportJob) -> Iterator[bytes]:
        """The export's file, a line (or a few) at a time, read from the store as it goes;
        each chunk's events are counted into the export's progress."""
        self._set_progress(job, 0, done=False, start=True)
        written = 0
        for chunk, events in WRITERS[job.format](self, job):
            written += events
            self._set_progress(job, written, done=False, start=False)
            yield chunk
        self._set_progress(job, written, done=True, start=False)

    def write_bundle(self, job: ExportJob) -> Iterator[tuple[bytes, int]]:
        """A bundle (``service.bundles``): progress counts the leaves of its range written."""
        lines = self._bundle(job)
        header = next(lines, None)
        if header is not None:
            yield header, 0
        for chunk in lines:
            yield chunk, chunk.count(b"\n")

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

    def pages(self, job: ExportJob) -> Iterator[list[StoredEvent]]:
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

    def write_jsonl(self, job: ExportJob) -> Iterator[tuple[bytes, int]]:
        """JSON lines: a header, then each event with its salts (``(chunk, events)`` pairs)."""
        header = self._header(job)
        yield orjson.dumps(header) + b"\n", 0
        if header["format"] == DUMP_FORMAT:
            for start in range(0, job.size, _PAGE):
                end = min(start + _PAGE, job.size)
                chunk = range_records(self._store, job.tenant_id, start, end)
                yield b"".join(orjson.dumps(record) + b"\n" for record in chunk), len(chunk)
            return
        for page in self.pages(job):
            records = self._evidence(job.tenant_id, page)
            yield b"".join(orjson.dumps(evidence_record(e)) + b"\n" for e in records), len(records)

    def _evidence(self, tenant_id: str, events: list[StoredEvent]) -> list[Evidence]:
        """Salts for a page: one range read when the page is dense in the log, else by id."""
        first, last = events[0].seq, events[-1].seq
        if last - first < 4 * len(events):
            by_seq = {e.event.seq: e for e in self._store.scan_evidence(tenant_id, first, last + 1)}
            return [by_seq[e.seq] for e in events if e.seq in by_seq]
        found = (self._store.get_evidence(tenant_id, e.id) for e in events)
        return [e for e in found if e is not None]

    def write_json(self, job: ExportJob) -> Iterator[tuple[bytes, int]]:
        """One JSON document: the export's description and its events."""
        header = self._header(job)
        del header["format"]
        yield b'{"export":' + orjson.dumps(header) + b',"events":[', 0
        sep = b"\n"
        for page in self.pages(job):
            yield sep + b",\n".join(orjson.dumps(e.to_wire()) for e in page), len(page)
            sep = b",\n"
        yield b"\n]}\n", 0

    def write_csv(self, job: ExportJob) -> Iterator[tuple[bytes, int]]:
        """CSV: a header row, then one row per event (``CSV_COLUMNS``)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for page in self.pages(job):
            writer.writerows(csv_row(e.to_wire()) for e in page)
            yield buffer.getvalue().encode(), len(page)
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue().encode(), 0


#: Writes one format's file as ``(chunk, events in it)`` pairs.
Writer = Callable[[ExportService, ExportJob], Iterator[tuple[bytes, int]]]
#: Each format's writer: another format (``service.bundles``) adds itself here, with its
#: media type in ``MEDIA_TYPES``.
WRITERS: dict[str, Writer] = {
    "jsonl": ExportService.write_jsonl,
    "json": ExportService.write_json,
    "csv": ExportService.write_csv,
    "bundle": ExportService.write_bundle,
}


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
