"""The entry point every benchmark shares: run, always clean up, exit 0/1/130."""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType
from typing import Protocol

__all__ = ["run_benchmark"]


class Benchmark(Protocol):
    def run(self) -> None: ...

    def cleanup(self) -> None: ...


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_benchmark(bench: Benchmark) -> int:
    """Run ``bench``, clean up even on Ctrl-C or SIGTERM, print the total time.

    Returns 0, 1 if the benchmark failed to run, or 130 if it was interrupted; a missed target
    is never a failure.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    # Also when started in the background, where a shell may have set SIGINT to be ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    status = 0
    try:
        bench.run()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        status = 130
    except Exception as exc:
        print(f"\nbenchmark failed: {exc!r}", file=sys.stderr)
        status = 1
    finally:
        bench.cleanup()
    print(f"total {time.monotonic() - started:.0f} s")
    return status
