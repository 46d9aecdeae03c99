"""Large batches prepared in worker processes, so preparation is not bound by the server's GIL.

Preparing an event (normalization, salts, commitments, the leaf prefix, Pangea's leaf) is pure
CPU and independent of ``seq`` (DESIGN §3), so it can happen anywhere before the writer. In
the server's process it competes for one GIL with the event loop and the writer thread; in a
worker process it runs on the other core. What comes back is packed (the stored JSON, the field
paths and the salts and commitments as two byte strings), because unpickling whole contents
and dicts of bytes would cost the server's process a good part of what it saved.

Order and idempotency are unchanged: a batch is prepared whole by one worker, in order, and
the writer sequences and replays exactly as for events prepared in-process. A refusal in a
worker (a reserved action, a bad timestamp, an event too large) is raised in the server's
process as the same error with the same message.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeAlias

import orjson

from trailkeep.errors import TrailkeepError
from trailkeep.model.commitments import SALT_SIZE
from trailkeep.model.event import NewEvent

from .events import Limits, prepare_all

__all__ = ["MIN_POOLED_EVENTS", "PART", "PreparePool"]

#: Batches smaller than this are prepared in-process: the round trip costs more than it saves.
MIN_POOLED_EVENTS = 32
#: Events per part sent to a worker (parts run on every worker at once).
PART = 100
_DIGEST = 32

_Packed: TypeAlias = tuple[
    str, str, bytes, tuple[str, ...], bytes, bytes, bytes | None, bytes | None
]
_Refusal: TypeAlias = tuple[type[TrailkeepError], str, str]

_limits: Limits | None = None


def _start(limits: Limits) -> None:
    global _limits  # one per worker process, set once when it starts
    _limits = limits


def _pack(event: NewEvent) -> _Packed:
    paths = tuple(event.salts)
    return (
        event.id,
        event.received_at,
        event.body,
        paths,
        b"".join(event.salts.values()),
        b"".join(event.commitments[p] for p in paths),
        event.leaf_prefix,
        event.pangea_leaf,
    )


def _unpack(packed: _Packed) -> NewEvent:
    event_id, received_at, body, paths, salts, commitments, prefix, pangea = packed
    salt_of = {p: salts[i * SALT_SIZE : (i + 1) * SALT_SIZE] for i, p in enumerate(paths)}
    commit_of = {p: commitments[i * _DIGEST : (i + 1) * _DIGEST] for i, p in enumerate(paths)}
    # The stored JSON decodes to the content it was encoded from (same keys, order, values).
    content = orjson.loads(body)
    return NewEvent(event_id, received_at, content, body, salt_of, commit_of, prefix, pangea)


def _prepare_packed(
    contents: Sequence[dict[str, Any]], batch: bool, first_index: int
) -> list[_Packed] | _Refusal:
    """In a worker: a part of a batch prepared and packed, or the refusal to raise."""
    assert _limits is not None, "worker started without its limits"
    try:
        events = prepare_all(contents, _limits, batch=batch, first_index=first_index)
    except TrailkeepError as exc:
        return (type(exc), exc.message, exc.code)
    return [_pack(e) for e in events]


def _unpack_all(packed: list[_Packed]) -> list[NewEvent]:
    return [_unpack(p) for p in packed]


class PreparePool:
    """Worker processes that prepare large batches (``TRAILKEEP_PREPARE_WORKERS``).

    Args:
        workers: how many processes (at least 1).
        limits: the limits every worker enforces, as the in-process path does.
        min_events: the smallest batch sent to a worker.
    """

    def __init__(
        self, workers: int, limits: Limits, *, min_events: int = MIN_POOLED_EVENTS
    ) -> None:
        self.min_events = min_events
        if workers < 1:
            raise ValueError(f"a prepare pool needs at least 1 worker, got {workers}")
        # forkserver: workers start from a clean process, not a copy of the server's threads.
        context = multiprocessing.get_context("forkserver")
        self._executor = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start, initargs=(limits,)
        )

    async def prepare(self, contents: Sequence[dict[str, Any]], *, batch: bool) -> list[NewEvent]:
        """The events of one request, prepared by the workers in parts of :data:`PART` events.

        Parts keep every step the server's process takes short: each part's answer is
        unpickled in one call holding the GIL, and unpacked on a worker thread, never on the
        event loop (a full 8 MiB batch in one piece stalled it for seconds).

        Raises:
            TrailkeepError: the same refusal the in-process path raises (the first event's).
        """
        loop = asyncio.get_running_loop()
        items = list(contents)
        parts = [
            loop.run_in_executor(self._executor, _prepare_packed, items[at : at + PART], batch, at)
            for at in range(0, len(items), PART)
        ]
        try:
            results = [await part for part in parts]  # in order: the first refusal wins
        finally:
            for part in parts:
                part.cancel()  # after a refusal, parts not yet started are not prepared
        events: list[NewEvent] = []
        for result in results:
            if isinstance(result, tuple):
                cls, message, code = result
                raise cls(message, code=code)
        for result in results:
            events += await asyncio.to_thread(_unpack_all, result)  # type: ignore[arg-type]
        return events

    def close(self) -> None:
        """Stop the workers (requests still being prepared finish first)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
