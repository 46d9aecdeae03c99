"""The machine's floor, measured in the same run: ``shared/bench/floor.py`` and durable commits.

``floor.py`` prints one line per measurement (``<label>  <n> events/s  (<ms> ms)``); we run it
in a child process (it does its work at import) and read those lines back. It measures SQLite
with ``synchronous=NORMAL``; trailkeep defaults to ``FULL`` (an fsync per group commit), so this
module also measures how many one-row ``FULL`` commits per second the temp filesystem takes —
the ceiling for a writer that commits once per request.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["FULL_COMMITS", "find_floor", "full_commit_rate", "run_floor"]

FULL_COMMITS = "sqlite FULL commits/s, 1 row/txn (ingest.py)"
_LINE = re.compile(r"^(?P<label>.+?)\s+(?P<rate>[\d,]+) events/s")
_ENV = "TRAILKEEP_BENCH_FLOOR"


def find_floor(flag: str | None) -> Path | None:
    """``--floor``, else ``$TRAILKEEP_BENCH_FLOOR``, else ``shared/bench/floor.py`` beside the
    checkout or a directory above it."""
    if flag:
        return Path(flag)
    if os.environ.get(_ENV):
        return Path(os.environ[_ENV])
    for parent in Path(__file__).resolve().parents[1:]:  # a checkout, or a worktree deeper
        candidate = parent / "shared" / "bench" / "floor.py"
        if candidate.exists():
            return candidate
    return None


def run_floor(path: Path, timeout: float = 600.0) -> tuple[dict[str, float], str]:
    """Run ``floor.py``; return ``{label: events/s}`` and its raw output."""
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{path} failed: {done.stderr.strip()[-500:]}")
    rates = {}
    for line in done.stdout.splitlines():
        m = _LINE.match(line)
        if m:
            rates[m["label"].strip()] = float(m["rate"].replace(",", ""))
    return rates, done.stdout


def full_commit_rate(directory: str, commits: int = 300, seconds: float = 5.0) -> float:
    """One-row ``synchronous=FULL`` WAL commits per second in ``directory``."""
    with tempfile.TemporaryDirectory(dir=directory) as d:
        db = sqlite3.connect(os.path.join(d, "f.db"), isolation_level=None)
        try:
            db.execute("pragma journal_mode=wal")
            db.execute("pragma synchronous=full")
            db.execute("create table t(x blob)")
            row = (b"x" * 400,)
            done, t0 = 0, time.perf_counter()
            while done < commits and time.perf_counter() - t0 < seconds:
                db.execute("begin")
                db.execute("insert into t values (?)", row)
                db.execute("commit")
                done += 1
            return done / (time.perf_counter() - t0)
        finally:
            db.close()
