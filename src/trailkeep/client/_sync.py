"""``Client``: the blocking SDK, driving the operations of ``_base`` with ``httpx.Client``."""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Unpack, overload

import httpx
import orjson

from ._base import BaseClient, Call, Op, Sleep
from ._files import open_private, publish
from ._models import (
    Event,
    EventList,
    ExportFormat,
    ExportInfo,
    Filters,
    Page,
    SignedCheckpoint,
    Sort,
    StreamCheckpoint,
    VerifiedEvent,
)
from ._stream import StreamSession, decode
from .errors import AuditError, InvalidArgumentError, error_from_response, error_from_transport

if TYPE_CHECKING:
    from .batch import BatchLogger

__all__ = ["Client"]

T = TypeVar("T")
#: Keys as `GET /v1/tenants/{t}/keys` lists them (`list` is also a method name below).
KeyList = list[dict[str, Any]]
#: Lines of an export file that are not events: jsonl's header; json's first and last.
#: Lines of a file before its first event (for a bundle, before its first leaf).
HEADER_LINES: dict[str, int] = {"jsonl": 1, "json": 2, "csv": 1, "bundle": 1}


class Client(BaseClient):
    """The trailkeep SDK, blocking. Thread-safe; use one per process, as a context manager.

    Args: as ``BaseClient`` (``base_url``, ``token``, ``org_id``, ``timeout``,
        ``pin_public_key``, ``pinned_checkpoint``, ``max_retries``, ``headers``), plus
        ``transport``: an ``httpx.BaseTransport`` (tests: ``httpx.MockTransport``).

    Example::

        with Client("http://127.0.0.1:8000", token=TOKEN) as audit:
            audit.log(action="user.login", actor_id="u-1", outcome="success")
            for event in audit.iter_events(action="user.login", start="now-1h"):
                print(event["actor"]["id"])
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        org_id: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        pin_public_key: str | None = None,
        pinned_checkpoint: str | None = None,
        max_retries: int = 2,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            base_url,
            token=token,
            org_id=org_id,
            timeout=timeout,
            pin_public_key=pin_public_key,
            pinned_checkpoint=pinned_checkpoint,
            max_retries=max_retries,
            headers=headers,
        )
        self._http = httpx.Client(
            base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport
        )
        self._loggers: weakref.WeakSet[BatchLogger] = weakref.WeakSet()

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Flush and stop this client's batch loggers, then close its connections."""
        for logger in list(self._loggers):
            logger.close()
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- driving operations ----------------------------------------------------------------

    def _request(self, call: Call, read_timeout: float | None = None) -> httpx.Request:
        timeout = httpx.Timeout(self.timeout, read=read_timeout or self.timeout)
        body = None if call.json is None else orjson.dumps(call.json)
        headers = dict(call.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self._http.build_request(
            call.method, call.path, params=list(call.params), content=body, headers=headers,
            timeout=timeout,
        )  # fmt: skip

    def _perform(self, call: Call) -> httpx.Response:
        try:
            response = self._http.send(self._request(call))
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.base_url) from exc
        if response.is_error:
            raise error_from_response(response)
        return response

    def _run(self, op: Op[T]) -> T:
        """Perform an operation's calls and sleeps until it returns."""
        try:
            step = next(op)
            while True:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = op.send(None)
                    continue
                try:
                    response = self._perform(step)
                except AuditError as error:
                    step = op.throw(error)
                else:
                    step = op.send(response)
        except StopIteration as done:
            result: T = done.value
            return result

    @contextmanager
    def _streaming(self, call: Call, read_timeout: float | None = None) -> Iterator[httpx.Response]:
        try:
            response = self._http.send(self._request(call, read_timeout), stream=True)
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.base_url) from exc
        try:
            if response.is_error:
                response.read()
                raise error_from_response(response)
            yield response
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.base_url) from exc
        finally:
            response.close()

    # -- write -----------------------------------------------------------------------------

    def log(self, event: Mapping[str, Any] | None = None, /, **fields: Any) -> Event:
        """Record one event and return it as stored (with ``id``, ``seq``, ``hash``).

        Pass a mapping, keywords, or both: ``log(action="login", actor_id="u-1")``;
        ``actor_*``, ``target_*`` and ``source_*`` keywords fill those objects. With an
        ``idempotency_key`` a lost answer is retried safely.
        """
        return self._run(self._op_log(event, fields))

    def log_bulk(self, events: Sequence[Mapping[str, Any]], *, batch_size: int = 1000) -> EventList:
        """Record many events, in requests of at most ``batch_size`` (≤ 1000), each all or
        nothing. If a request fails, the earlier ones stay written: give events idempotency
        keys to re-run safely."""
        return self._run(self._op_log_bulk(events, batch_size))

    def batch_logger(self, **options: Any) -> BatchLogger:
        """A background ``BatchLogger`` on this client (see its docs for ``options``); the
        client flushes and stops it when closed."""
        from .batch import BatchLogger

        logger = BatchLogger(self, **options)
        self._loggers.add(logger)
        return logger

    # -- read ------------------------------------------------------------------------------

    def list(
        self,
        *,
        sort: Sort | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        **filters: Unpack[Filters],
    ) -> Page:
        """One page of events matching the filters, newest first by default."""
        return self._run(self._op_list(self._list_params(filters, None, sort, limit, cursor)))

    def search(
        self,
        q: str | None = None,
        *,
        sort: Sort | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        **filters: Unpack[Filters],
    ) -> Page:
        """One page of events matching a search-language query ``q`` and the filters."""
        return self._run(self._op_list(self._list_params(filters, q, sort, limit, cursor)))

    def iter_events(
        self,
        q: str | None = None,
        *,
        sort: Sort | None = None,
        page_size: int = 500,
        **filters: Unpack[Filters],
    ) -> Iterator[Event]:
        """Every matching event, page after page (a stable snapshot of the walk's start)."""
        cursor: str | None = None
        while True:
            params = self._list_params(filters, q, sort, page_size, cursor)
            page = self._run(self._op_list(params))
            yield from page.events
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def redact(self, event_id: str, fields: Sequence[str], *, reason: str | None = None) -> Event:
        """Erase fields of an event (admin key): values and salts go, commitments stay, so
        every proof still verifies; returns the event as it now reads."""
        return self._run(self._op_redact(event_id, fields, reason))

    def tenant(self) -> dict[str, Any]:
        """The calling tenant and its settings (admin key)."""
        return self._run(self._op_tenant())

    def update_tenant(self, **settings: Any) -> dict[str, Any]:
        """Change tenant settings (admin key), e.g. ``retention_days=90``; only those sent."""
        return self._run(self._op_update_tenant(settings))

    def prune(self, *, limit: int | None = None) -> dict[str, Any]:
        """Prune the tenant's expired events now, by its ``retention_days`` (admin key): at
        most ``limit`` of them; ``done`` in the answer says whether any expired are left."""
        return self._run(self._op_prune(limit))

    def list_keys(self, tenant: str) -> KeyList:
        """A tenant's keys, with when each was last used and expires (operator key, or the
        tenant's admin key); never their secrets."""
        return self._run(self._op_list_keys(tenant))

    def create_key(
        self, tenant: str, role: str, *, name: str = "", expires: str | None = None
    ) -> dict[str, Any]:
        """Issue a key (operator key, or the tenant's admin key): ``role`` is writer, reader
        or admin; ``expires`` a duration from now (``30d``) or a time. The answer holds the
        token, shown only this once."""
        return self._run(self._op_create_key(tenant, role, name, expires))

    def revoke_key(self, tenant: str, client_id: str) -> None:
        """Revoke a key; the server refuses it within seconds."""
        self._run(self._op_revoke_key(tenant, client_id))

    def describe(self, event_id: str) -> Event:
        """One event by id."""
        return self._run(self._op_describe(event_id))

    def facets(
        self, q: str | None = None, *, top: int | None = None, **filters: Unpack[Filters]
    ) -> dict[str, Any]:
        """Counts of the matching events by category, action, outcome, target type and actor
        id (the ``top`` values of each), and a time histogram: ``GET /v1/facets``."""
        return self._run(self._op_facets(self._facet_params(filters, q, top)))

    @overload
    def stream(
        self,
        q: str | None = None,
        *,
        after_seq: int | None = None,
        timeout: float | None = None,
        checkpoints: Literal[False] = False,
        idle_timeout: float = 45.0,
        max_reconnects: int = 5,
        **filters: Unpack[Filters],
    ) -> Iterator[Event]: ...

    @overload
    def stream(
        self,
        q: str | None = None,
        *,
        after_seq: int | None = None,
        timeout: float | None = None,
        checkpoints: Literal[True],
        idle_timeout: float = 45.0,
        max_reconnects: int = 5,
        **filters: Unpack[Filters],
    ) -> Iterator[Event | StreamCheckpoint]: ...

    def stream(
        self,
        q: str | None = None,
        *,
        after_seq: int | None = None,
        timeout: float | None = None,
        checkpoints: bool = False,
        idle_timeout: float = 45.0,
        max_reconnects: int = 5,
        **filters: Unpack[Filters],
    ) -> Iterator[Event] | Iterator[Event | StreamCheckpoint]:
        """Events as they are written (matching the filters and the query ``q``), forever or
        for ``timeout`` seconds.

        A dropped connection is resumed where it stopped (``Last-Event-ID``): no event is
        missed or repeated. ``after_seq`` starts after that seq (-1: from the first event;
        default: from now). With ``checkpoints=True`` the stream's ``StreamCheckpoint``s are
        yielded too (verified and pinned in pinning mode).
        """
        session = StreamSession(
            self._list_params(filters, q, None, None, None), after_seq, timeout=timeout,
            idle_timeout=idle_timeout, max_reconnects=max_reconnects,
        )  # fmt: skip
        return self._stream(session, checkpoints)

    def _stream(
        self, session: StreamSession, checkpoints: bool
    ) -> Iterator[Event | StreamCheckpoint]:
        while not session.expired():
            error: AuditError | None = None
            try:
                with self._streaming(session.call(), session.read_timeout()) as response:
                    session.connected()
                    for line in response.iter_lines():
                        message = session.feed(line)
                        if message is not None and message.event == "event":
                            yield dict(decode(message))
                        elif message is not None:
                            item = self._stream_checkpoint(message.data, message.id)
                            if checkpoints:
                                yield item
                        if session.expired():
                            return
                        if session.overshoots():
                            break
                    if session.overshoots():
                        continue  # reopen with a read timeout that ends by the deadline
            except AuditError as exc:  # a lost connection, a timeout, an error answer
                error = exc
            if session.expired():
                return
            time.sleep(session.dropped(error))

    def _stream_checkpoint(self, data: str, position: str | None) -> StreamCheckpoint:
        note = orjson.loads(data)["checkpoint"]
        checkpoint = self._run(self._observe(note, latest=False))
        return StreamCheckpoint(checkpoint, int(position or checkpoint.size - 1))

    # -- exports ---------------------------------------------------------------------------

    def create_export(
        self,
        q: str | None = None,
        *,
        format: ExportFormat = "jsonl",
        seq_range: tuple[int | None, int | None] = (None, None),
        **filters: Unpack[Filters],
    ) -> ExportInfo:
        """Start an export of the events matching the filters and ``q``; it is ready at once
        (a snapshot). ``seq_range``: a bundle's ``[start, end)`` (None: from 0, to the end)."""
        return self._run(self._op_create_export(format, q, filters, seq_range))

    def get_export(self, export_id: str, *, count: bool = False) -> ExportInfo:
        """An export's status; ``count=True`` counts its events if not yet known."""
        return self._run(self._op_get_export(export_id, count))

    def download_export(
        self,
        export: str | ExportInfo,
        path: str | Path,
        *,
        progress: Callable[[int], None] | None = None,
        overwrite: bool = True,
    ) -> int:
        """Write an export's file to ``path`` (atomically); returns the number of events.

        ``progress`` is called with the number of events written so far. With
        ``overwrite=False`` an existing ``path`` is left alone and ``InvalidArgumentError``
        raised.
        """
        info = export if isinstance(export, ExportInfo) else self.get_export(export)
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        newlines = 0
        with self._streaming(self._download_call(info.id)) as response, open_private(partial) as fh:
            for chunk in response.iter_bytes():
                fh.write(chunk)
                newlines += chunk.count(b"\n")
                if progress is not None:
                    progress(max(newlines - HEADER_LINES[info.format], 0))
        try:
            publish(partial, target, overwrite=overwrite)
        except FileExistsError:
            raise InvalidArgumentError(
                f"{target} exists; pass overwrite=True to replace it"
            ) from None
        return max(newlines - HEADER_LINES[info.format], 0)

    def export(
        self,
        path: str | Path,
        q: str | None = None,
        *,
        format: ExportFormat = "jsonl",
        progress: Callable[[int], None] | None = None,
        **filters: Unpack[Filters],
    ) -> ExportInfo:
        """Export the matching events to a file: ``create_export`` + ``download_export``.

        Returns the export, with ``events`` set to the number written.
        """
        info = self.create_export(q, format=format, **filters)
        written = self.download_export(info, path, progress=progress)
        return dataclasses.replace(info, events=written)

    def export_lines(
        self, q: str | None = None, *, format: ExportFormat = "jsonl", **filters: Unpack[Filters]
    ) -> Iterator[str]:
        """Export the matching events and yield the file's lines as they arrive."""
        info = self.create_export(q, format=format, **filters)
        with self._streaming(self._download_call(info.id)) as response:
            yield from response.iter_lines()

    # -- integrity -------------------------------------------------------------------------

    def public_key(self) -> str:
        """The log's public key as the server serves it. Pin a copy obtained out of band."""
        return self._run(self._op_public_key())

    def checkpoint(self) -> SignedCheckpoint:
        """The latest signed checkpoint (verified, and checked against the pin, when pinning)."""
        return self._run(self._op_checkpoint())

    def proof(self, event_id: str, *, size: int | None = None) -> dict[str, Any]:
        """An event's inclusion proof to the latest (or the ``size``) checkpoint, with its
        salts: the JSON of ``GET /v1/events/{id}/proof``."""
        return self._run(self._op_proof(event_id, size))

    def verify_event(
        self,
        event_or_proof: str | Mapping[str, Any],
        proof: Mapping[str, Any] | None = None,
        public_key: str | None = None,
    ) -> VerifiedEvent:
        """Prove an event is in the log, unchanged.

        Args:
            event_or_proof: an event id, an event (your copy: its content is what is
                checked), an export record, or a proof from ``proof()``.
            proof: the proof to use (fetched when not given).
            public_key: the key to verify with; default the pinned key, else the server's
                (``public_key()``; trust on first use).

        Raises:
            VerificationError: naming what does not verify.
        """
        return self._run(self._op_verify_event(event_or_proof, proof, public_key))

    def verify_consistency(
        self, old: str | SignedCheckpoint, new: str | SignedCheckpoint | None = None
    ) -> tuple[SignedCheckpoint, SignedCheckpoint]:
        """Prove checkpoint ``new`` (default: the latest) extends ``old``: nothing earlier was
        changed or removed. Raises ``InconsistentLogError`` otherwise."""
        return self._run(self._op_verify_consistency(old, new))
