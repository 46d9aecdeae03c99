"""What Pangea's second tree costs at ingest: both trees against the RFC 9162 tree alone.

Run with the project's virtualenv::

    .venv/bin/python benchmarks/pangea_tree.py --quick     # 2 x 3 rounds of 20k events
    .venv/bin/python benchmarks/pangea_tree.py             # 2 x 5 rounds of 50k events

The server cannot ingest without Pangea's tree (no switch may break that invariant), so this
measures in-process, in one run, alternating rounds on fresh SQLite files (``synchronous=FULL``,
500-event batches, 4 appends in flight like the server's group commit), with the product's own
``prepare_event``, sequencer (``storage/_sequencer.py``) and SQLite writer both times:

- **both trees**: exactly what the server runs (commitments, RFC 9162 leaf prefix, Pangea
  leaf; both trees' nodes in the same transaction);
- **RFC 9162 alone**: the same code with the Pangea parts replaced where it calls them (no
  copy of the writer, no switch in the product): ``prepare_event`` computes no Pangea leaf
  (a patched name), and the writer drives a sequencer whose ``_trees`` (the one method that
  grows both trees) grows the RFC 9162 tree alone and returns no ``pangea_tree_nodes`` rows.

It prints events/s of each (median of the rounds, wall clock) and their ratio (target >= 0.9),
and the CPU time of each per event (process time, the writer thread included), which a shared
machine disturbs less than the wall clock.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from trailkeep.merkle import RFC9162, CompactRange
from trailkeep.model.event import NewEvent
from trailkeep.model.tenant import Tenant
from trailkeep.service import events as events_module
from trailkeep.service.events import Limits, prepare_event
from trailkeep.service.stores import event_leaf
from trailkeep.storage import _sqlite_writer as writer_module
from trailkeep.storage._sequencer import GroupSequencer, NodeRows
from trailkeep.storage.sqlite import SQLiteStore
from trailkeep.storage.tree import TreeHead, leaf_rows

TARGET = 0.9
BATCH = 500
IN_FLIGHT = 4


class _RfcOnlySequencer(GroupSequencer):
    """The product's sequencer with ``_trees`` growing the RFC 9162 tree alone: Pangea's
    frontier is left as it was and no Pangea node rows are written."""

    def _trees(
        self,
        tenant_id: str,
        head: TreeHead,
        events: Sequence[NewEvent],
        fresh: list[tuple[int, int]],
        leaves: list[bytes],
    ) -> tuple[TreeHead, NodeRows, NodeRows]:
        compact = CompactRange.from_subtrees(RFC9162, head.size, head.frontier)
        nodes = compact.extend(leaves)
        grown = TreeHead(compact.size, compact.hashes, head.pangea)
        return grown, leaf_rows(tenant_id, head.size, leaves, nodes), []


@contextlib.contextmanager
def rfc_only() -> Iterator[None]:
    """The product's ingest path with every Pangea step replaced (see the module doc)."""
    with (
        mock.patch.object(events_module, "pangea_leaf", return_value=None),
        mock.patch.object(writer_module, "GroupSequencer", _RfcOnlySequencer),
    ):
        yield


def _contents(count: int) -> list[dict[str, Any]]:
    return [
        {
            "action": ("login", "document.update", "invoke")[i % 3],
            "category": "users",
            "outcome": "success",
            "actor": {"id": f"user-{i % 97}", "email": f"u{i % 97}@example.com"},
            "target": {"id": f"doc-{i % 1013}", "type": "document"},
            "source": {"ip": "10.0.0.1", "service": "api"},
            "message": f"event number {i} of the benchmark",
            "metadata": {"model": "m", "n": i},
        }
        for i in range(count)
    ]


def _round(contents: Sequence[dict[str, Any]], rfc_only_: bool) -> tuple[float, float]:
    """One round: events/s (wall) and CPU seconds per event (process time, all threads)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(str(Path(tmp) / "b.db"), leaf_function=event_leaf)
        try:
            store.migrate()
            store.create_tenant(Tenant("acme", "2026-01-01T00:00:00.000000Z"))
            limits = Limits()
            started, cpu = time.perf_counter(), time.process_time()
            with rfc_only() if rfc_only_ else contextlib.nullcontext():
                pending = []
                for start in range(0, len(contents), BATCH):
                    batch = [
                        prepare_event(dict(c), limits) for c in contents[start : start + BATCH]
                    ]
                    pending.append(store.append("acme", batch))
                    if len(pending) >= IN_FLIGHT:
                        pending.pop(0).result()
                for future in pending:
                    future.result()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            head = store.tree_head("acme")
            assert head.size == len(contents)
            assert bool(head.pangea) != rfc_only_, "the run did not write the trees it measures"
            with sqlite3.connect(Path(tmp) / "b.db") as conn:
                (pangea_rows,) = conn.execute("SELECT count(*) FROM pangea_tree_nodes").fetchone()
            assert bool(pangea_rows) != rfc_only_, "the run did not write the nodes it measures"
        finally:
            store.close()
    return len(contents) / elapsed, cpu / len(contents)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="3 rounds of 20k events per side")
    p.add_argument("--events", type=int, help="events per round (default 50k; quick 20k)")
    p.add_argument("--rounds", type=int, help="rounds per side (default 5; quick 3)")
    args = p.parse_args(argv)
    count = args.events or (20_000 if args.quick else 50_000)
    rounds = args.rounds or (3 if args.quick else 5)
    contents = _contents(count)
    both: list[float] = []
    alone: list[float] = []
    both_cpu: list[float] = []
    alone_cpu: list[float] = []
    for r in range(rounds):
        for rfc, rates, cpus in ((False, both, both_cpu), (True, alone, alone_cpu)):
            rate, cpu = _round(contents, rfc)
            rates.append(rate)
            cpus.append(cpu)
        print(
            f"round {r + 1}: both trees {both[-1]:,.0f} ev/s ({both_cpu[-1] * 1e6:.0f} us CPU/ev),"
            f" RFC 9162 alone {alone[-1]:,.0f} ev/s ({alone_cpu[-1] * 1e6:.0f} us CPU/ev)"
        )
    ratio = statistics.median(both) / statistics.median(alone)
    cpu_ratio = statistics.median(alone_cpu) / statistics.median(both_cpu)
    for name, rates, cpus in (("both trees", both, both_cpu), ("RFC 9162 alone", alone, alone_cpu)):
        print(
            f"{name:<15} median {statistics.median(rates):,.0f} ev/s (max {max(rates):,.0f}),"
            f" CPU {statistics.median(cpus) * 1e6:.0f} us/event"
        )
    print(f"ratio {ratio:.3f} (target >= {TARGET}): {'MET' if ratio >= TARGET else 'MISSED'}")
    print(f"CPU ratio (RFC 9162 alone CPU / both trees CPU per event) {cpu_ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
