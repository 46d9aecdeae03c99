"""Downloaded exports hold a tenant's events: the file is 0600 whatever the umask (item 7)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import Either


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.asyncio
class TestExportFileMode:
    """``export`` and ``download_export`` write files only their owner can read."""

    async def test_new_file(self, sdk: Either, tmp_path: Path) -> None:
        await sdk("log_bulk", [{"action": "a", "actor": {"email": "a@x.io"}}])
        await sdk("export", tmp_path / "all.jsonl")
        assert mode(tmp_path / "all.jsonl") == 0o600

    async def test_overwritten_file(self, sdk: Either, tmp_path: Path) -> None:
        target = tmp_path / "all.csv"
        target.write_text("old")
        target.chmod(0o644)
        leftover = tmp_path / "all.csv.part"  # a partial download left by a crash
        leftover.write_text("x")
        leftover.chmod(0o666)
        await sdk("log_bulk", [{"action": "a"}])
        await sdk("export", target, format="csv")
        assert mode(target) == 0o600
        assert target.read_text().startswith("id,seq,")
