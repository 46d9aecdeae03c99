"""What Pangea's second tree costs at ingest: both trees against the RFC 9162 tree alone.

Run with the project's virtualenv::

    .venv/bin/python benchmarks/pangea_tree.py --quick     # 2 x 3 rounds of 20k events
    .venv/bin/python benchmarks/pangea_tree.py             # 2 x 5 rounds of 50k events

The server cannot ingest without Pangea's tree (no switch may break that invariant), so this
measures in-process, in one run, alternating rounds on fresh SQLite files (``synchronous=FULL``,
500-event batches, 4 appends in flight like the server's group commit):

- **both trees**: ``prepare_event`` (commitments, RFC 9162 leaf prefix, Pangea leaf) and the
  store's writer (both trees' nodes in the same transaction): what the server runs;
- **RFC 9162 alone**: the same events prepared without the Pangea leaf, and a writer that
  appends only the RFC 9162 tree (the writer as it was before the second tree, kept here).

It prints events/s of each (median of the rounds) and their ratio (target >= 0.9).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from trailkeep.model.event import NewEvent, StoredEvent
from trailkeep.model.tenant import Tenant
from trailkeep.query.fulltext import search_document
from trailkeep.service import events as events_module
from trailkeep.service.events import Limits, prepare_event
from trailkeep.service.stores import event_leaf
from trailkeep.storage import tree as tree_module
from trailkeep.storage._sqlite_sql import ROLLUP_AT, add_rollups, insert_many
from trailkeep.storage.base import Appended
from trailkeep.storage.rows import EVENT_COLUMNS, event_row
from trailkeep.storage.sqlite import SQLiteStore
from trailkeep.storage.tree import TreeHead

TARGET = 0.9
BATCH = 500
IN_FLIGHT = 4


class RfcOnlyStore(SQLiteStore):
    """The SQLite writer appending the RFC 9162 tree only (as before Pangea's tree)."""

    def _sequence(
        self,
        conn: sqlite3.Connection,
        tenant_id: str,
        head: TreeHead,
        fresh: list[tuple[int, NewEvent]],
        out: list[Appended | None],
    ) -> TreeHead:
        leaves: list[bytes] = []
        rows = []
        texts = []
        first_row = conn.execute("SELECT coalesce(max(row_id), 0) + 1 FROM events").fetchone()[0]
        for offset, (i, event) in enumerate(fresh):
            seq = head.size + offset
            leaf = event_leaf(tenant_id, seq, event)
            leaves.append(leaf)
            rows.append((first_row + offset, *event_row(tenant_id, seq, event)))
            text = search_document(event.content)
            texts.append((first_row + offset, text.message, text.fields))
            stored = StoredEvent(tenant_id, seq, event.id, event.received_at, event.content, leaf)
            out[i] = Appended(stored, replayed=False)
        insert_many(conn, "events", ("row_id", *EVENT_COLUMNS), rows)
        insert_many(conn, "events_fts", ("rowid", "message", "fields"), texts)
        add_rollups(conn, tenant_id, [{c: r[i + 1] for c, i in ROLLUP_AT.items()} for r in rows])
        compact = tree_module.CompactRange.from_subtrees(
            tree_module.RFC9162, head.size, head.frontier
        )
        nodes = compact.extend(leaves)
        insert_many(
            conn,
            "tree_nodes",
            ("tenant_id", "level", "idx", "hash"),
            tree_module.leaf_rows(tenant_id, head.size, leaves, nodes),
        )
        return TreeHead(compact.size, compact.hashes, head.pangea)


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


def _round(
    store_class: type[SQLiteStore], contents: Sequence[dict[str, Any]], rfc_only: bool
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = store_class(str(Path(tmp) / "b.db"), leaf_function=event_leaf)
        try:
            store.migrate()
            store.create_tenant(Tenant("acme", "2026-01-01T00:00:00.000000Z"))
            patch = (
                mock.patch.object(events_module, "pangea_leaf", return_value=None)
                if rfc_only
                else mock.patch.object(events_module, "pangea_leaf", events_module.pangea_leaf)
            )
            limits = Limits()
            started = time.perf_counter()
            with patch:
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
            elapsed = time.perf_counter() - started
            head = store.tree_head("acme")
            assert head.size == len(contents)
            assert bool(head.pangea) != rfc_only, "the run did not write the trees it measures"
        finally:
            store.close()
    return len(contents) / elapsed


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
    for r in range(rounds):
        both.append(_round(SQLiteStore, contents, rfc_only=False))
        alone.append(_round(RfcOnlyStore, contents, rfc_only=True))
        print(
            f"round {r + 1}: both trees {both[-1]:,.0f} ev/s, RFC 9162 alone {alone[-1]:,.0f} ev/s"
        )
    ratio = statistics.median(both) / statistics.median(alone)
    print(f"both trees      median {statistics.median(both):,.0f} ev/s (max {max(both):,.0f})")
    print(f"RFC 9162 alone  median {statistics.median(alone):,.0f} ev/s (max {max(alone):,.0f})")
    print(f"ratio {ratio:.3f} (target >= {TARGET}): {'MET' if ratio >= TARGET else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
