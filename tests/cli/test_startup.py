"""`trailkeep --help` starts fast: the command tree loads no SDK, server or crypto module.

Timing a process is flaky on a busy machine, so this pins the cause instead: the modules that
made `--help` take ~1.1 s (httpx, cryptography, the SDK, the merkle package, FastAPI) are
imported only by the commands that use them. Measured: 0.52-0.58 s of CPU before, 0.25-0.27 s
after lazy imports, 0.15-0.2 s with click's plain help (docs/cli.md).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# (Not pydantic: typer itself imports it to render a subcommand's help.)
HEAVY = ("httpx", "cryptography", "trailkeep.client", "trailkeep.merkle", "fastapi", "uvicorn",
         "rich.progress", "trailkeep.storage", "trailkeep.service", "typer.rich_utils",
         "rich.markdown", "pygments")  # fmt: skip


class TestLazyImports:
    """Building and printing the command tree imports none of the heavy modules."""

    @pytest.mark.parametrize(
        "argv",
        [pytest.param(["--help"], id="help"), pytest.param(["search", "--help"], id="search-help"),
         pytest.param(["verify", "--help"], id="verify-help")],
    )  # fmt: skip
    def test_help(self, argv: list[str]) -> None:
        code = (
            "import sys\n"
            f"sys.argv = ['trailkeep', *{argv!r}]\n"
            "from trailkeep.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=False, timeout=60)  # fmt: skip
        loaded = result.stdout.strip().splitlines()[-1]
        assert loaded == "[]", loaded
