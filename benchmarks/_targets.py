"""Issue 18's ingest targets, each judged MET or MISSED against the floor of the same run.

The absolute rates of a shared 2-core machine swing by 2x from one hour to the next; the ratio
to the SQLite insert floor measured minutes earlier on the same machine does not, so the rate
targets are ratios. CPU per event is measured on the server process alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["TARGETS", "Target", "floor_rate", "verdict"]

SQLITE_FLOOR: Final = "sqlite insert"


@dataclass(frozen=True, slots=True)
class Target:
    """One bound: ``value`` must be at least (``at_least``) or at most ``bound``."""

    name: str
    bound: float
    at_least: bool
    unit: str

    def met(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound

    def text(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.bound:g}{self.unit}"


TARGETS: Final = {
    "batched_ratio": Target("batched ingest / sqlite floor", 0.15, True, "x"),
    "batched_cpu": Target("batched server CPU per event", 60.0, False, " µs"),
    "single_ratio": Target("single-event (32 concurrent) / sqlite floor", 0.025, True, "x"),
    "single_p99": Target("single-event p99 latency", 50.0, False, " ms"),
    "single_cpu": Target("single-event server CPU per event", 250.0, False, " µs"),
}


def floor_rate(floor: dict[str, float]) -> float | None:
    """The same run's SQLite insert floor in rows/s (``floor.py``'s line), if it ran."""
    return next((v for k, v in floor.items() if k.startswith(SQLITE_FLOOR)), None)


def verdict(target: Target, value: float | None) -> str:
    """``MET``, ``MISSED``, or ``n/a`` when the value could not be measured (no floor)."""
    if value is None or value != value:  # NaN: nothing was ingested
        return "n/a"
    return "MET" if target.met(value) else "MISSED"
