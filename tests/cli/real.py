"""Running the real ``trailkeep`` command in a directory, as a newcomer types it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.process import TRAILKEEP


def trailkeep(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``trailkeep ARGS`` in ``cwd`` with no TRAILKEEP_* variable but those in ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRAILKEEP_")}
    return subprocess.run(
        [*TRAILKEEP, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**clean, "AXONFLOW_TELEMETRY": "off", "COLUMNS": "80", **(env or {})},
        check=False,
        timeout=timeout,
    )
