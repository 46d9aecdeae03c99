"""SDK-only users install no server: the server's dependencies are the `server` extra."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER_ONLY = ("fastapi", "uvicorn", "pydantic", "pydantic-settings", "prometheus-client")


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()


class TestServerExtra:
    """pyproject keeps the server apart; the README's install still is one command."""

    def test_core_has_no_server_dependency(self) -> None:
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        core = {_name(r) for r in project["dependencies"]}
        server = {_name(r) for r in project["optional-dependencies"]["server"]}
        assert core.isdisjoint(SERVER_ONLY)
        assert set(SERVER_ONLY) <= server
        assert {"httpx", "orjson", "cryptography", "rfc8785"} <= core

    def test_readme_installs_the_server(self) -> None:
        text = (ROOT / "README.md").read_text()
        assert "pip install -e '.[server]' && .venv/bin/trailkeep serve" in text
        assert "server" in (ROOT / "scripts" / "bootstrap").read_text()

    def test_serve_without_the_extra_says_what_to_install(self, tmp_path: Path) -> None:
        """`serve` on an SDK-only install (uvicorn made unimportable) names the extra."""
        code = ("import sys; sys.modules['uvicorn'] = None; sys.argv = ['trailkeep', 'serve'];"
                " from trailkeep.cli import main; main()")  # fmt: skip
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                                text=True, check=False, timeout=60)  # fmt: skip
        assert result.returncode == 1
        assert "pip install 'trailkeep[server]'" in result.stderr
        assert list(tmp_path.iterdir()) == []  # nothing created
