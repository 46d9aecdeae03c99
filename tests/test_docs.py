"""The docs stay true: every setting and every command is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from trailkeep.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


class TestConfigurationDocs:
    """docs/configuration.md names every setting's environment variable."""

    @pytest.mark.parametrize("name", sorted(Settings.model_fields))
    def test_setting_documented(self, name: str) -> None:
        text = (ROOT / "docs" / "configuration.md").read_text()
        assert f"`TRAILKEEP_{name.upper()}`" in text


class TestReadme:
    """The README gives the two quick-start commands that CI and newcomers rely on."""

    def test_commands(self) -> None:
        text = (ROOT / "README.md").read_text()
        assert "trailkeep serve" in text
        assert "scripts/test" in text
        assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
