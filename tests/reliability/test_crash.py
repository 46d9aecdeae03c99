"""Crash safety, short form: a server SIGKILLed three times under ingest loses no acknowledged
event, duplicates none, and its trees and checkpoints verify. ``scripts/crash_test.py`` is the
long form (25 kills)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "crash_test.py"


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("crash_test", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_test"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
class TestCrash:
    """Acknowledged means durable, across SIGKILLs at random moments."""

    def test_three_kills(self, capsys: pytest.CaptureFixture[str]) -> None:
        crash_test = _load_script()
        code = crash_test.run(kills=3, writers=4, min_gap=0.3, max_gap=0.8, seed=7)
        out = capsys.readouterr().out
        assert code == 0, out
        assert "events acknowledged" in out
