"""The docs stay true: every setting, CLI command and option, route and error code is documented.

Each check reads the code, not a list kept beside it, so a setting, command, option, route or
error code added on any branch fails here until its line is written in ``docs/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from trailkeep.cli.app import app as cli_app
from trailkeep.settings import DEPRECATED_VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "trailkeep"
DIALECT_PREFIXES = ("/axonflow", "/agilicus", "/wasabi", "/pangea")


def _doc(name: str) -> str:
    return (DOCS / name).read_text()


# -- settings ---------------------------------------------------------------------------------


class TestConfigurationDocs:
    """docs/configuration.md names every setting's variable, and only variables that exist."""

    @pytest.mark.parametrize("name", sorted(Settings.model_fields))
    def test_setting_documented(self, name: str) -> None:
        assert f"`TRAILKEEP_{name.upper()}`" in _doc("configuration.md")

    def test_no_stale_variables(self) -> None:
        root = typer.main.get_command(cli_app)
        known = {f"TRAILKEEP_{n.upper()}" for n in Settings.model_fields}
        known |= _cli_variables(root) | set(DEPRECATED_VARIABLES)
        documented = set(re.findall(r"`(TRAILKEEP_[A-Z_]+)`", _doc("configuration.md")))
        assert documented - known == set(), "documented but read by nothing"

    def test_cli_variables_documented(self) -> None:
        missing = _cli_variables(typer.main.get_command(cli_app)) - set(
            re.findall(r"`(TRAILKEEP_[A-Z_]+)`", _doc("configuration.md"))
        )
        assert missing == set()


def _cli_variables(command: Any) -> set[str]:
    from trailkeep.cli.common import command_variables

    return command_variables(command)


# -- the command line ---------------------------------------------------------------------------


def _commands(command: Any, path: str = "trailkeep") -> Iterator[tuple[str, Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, f"{path} {name}")


COMMANDS = dict(_commands(typer.main.get_command(cli_app)))


class TestCliDocs:
    """docs/cli.md documents every command, and every option of it."""

    @pytest.mark.parametrize("path", sorted(p for p in COMMANDS if p != "trailkeep"))
    def test_command(self, path: str) -> None:
        text = _doc("cli.md")
        assert f"{path}" in text, f"docs/cli.md lacks `{path}`"
        options = [o for p in COMMANDS[path].params for o in p.opts if o.startswith("--")]
        missing = [o for o in options if o != "--help" and f"`{o}" not in text]
        assert not missing, f"docs/cli.md lacks {missing} of `{path}`"


# -- routes -----------------------------------------------------------------------------------


def _norm(text: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", text)


def _routes(app: Any) -> list[tuple[str, str]]:
    found = {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE")
    }
    for route in app.routes:  # the ones kept out of the schema: /docs, /openapi.json, ...
        for method in getattr(route, "methods", None) or ():
            if method in ("GET", "POST", "PUT", "PATCH", "DELETE") and hasattr(route, "path"):
                found.add((method, route.path))
    return sorted(found)


def _documented(method: str, path: str) -> bool:
    """``METHOD /path`` in docs/api.md; a dialect's under its prefix in docs/dialects.md."""
    if f"{method} {_norm(path)}" in _norm(_doc("api.md")):
        return True
    for prefix in DIALECT_PREFIXES:
        if path.startswith(prefix + "/"):
            rest = _norm(f"{method} {path[len(prefix) :]}")
            lines = _norm(_doc("dialects.md")).splitlines()
            return any(f"`{prefix}`" in line and rest in line for line in lines)
    return f"{method} {_norm(path)}" in _norm(_doc("dialects.md"))


class TestRouteDocs:
    """Every route the server answers is in docs/api.md (or, for a dialect, docs/dialects.md)."""

    def test_routes(self, tmp_path: Path) -> None:
        from trailkeep.api.app import create_app
        from trailkeep.api.services import Services

        settings = Settings(
            database=f"sqlite:///{tmp_path / 'docs.db'}", signing_key=tmp_path / "k"
        )
        services = Services.build(settings)
        try:
            routes = _routes(create_app(settings, services))
        finally:
            services.close()
        assert len(routes) > 20
        missing = [f"{m} {p}" for m, p in routes if not _documented(m, p)]
        assert not missing, f"undocumented routes: {missing}"


# -- error codes ------------------------------------------------------------------------------

_CODE = re.compile(
    r"""code\s*=\s*"([A-Z][A-Z_]+)"|error_response\(\s*\d{3},\s*"([A-Z][A-Z_]+)"|"""
    r"""^\s*\d{3}:\s*"([A-Z][A-Z_]+)",""",
    re.MULTILINE,
)


def _codes(files: list[Path]) -> set[str]:
    return {next(g for g in m.groups() if g) for f in files for m in _CODE.finditer(f.read_text())}


def _server_files() -> list[Path]:
    skip = ("client", "cli", "compat")
    return [p for p in SRC.rglob("*.py") if not set(p.relative_to(SRC).parts) & set(skip)]


class TestErrorCodeDocs:
    """Every error code the native API can answer with is in docs/api.md's table; every code
    the SDK raises on its own is in docs/sdk.md."""

    def test_server_codes(self) -> None:
        codes = _codes(_server_files())
        assert {"INVALID_REQUEST", "NOT_FOUND", "RATE_LIMITED"} <= codes
        missing = sorted(c for c in codes if f"`{c}`" not in _doc("api.md"))
        assert not missing, f"docs/api.md lacks error codes {missing}"

    def test_statuses(self) -> None:
        from trailkeep.api.errors import _HTTP_CODES

        table = _doc("api.md").split("## Errors", 1)[1]
        missing = [s for s in _HTTP_CODES if not re.search(rf"^\| {s} \|", table, re.MULTILINE)]
        assert not missing, f"docs/api.md's error table lacks statuses {missing}"

    def test_sdk_codes(self) -> None:
        codes = _codes(sorted((SRC / "client").glob("*.py")))
        missing = sorted(c for c in codes if f"`{c}`" not in _doc("sdk.md"))
        assert not missing, f"docs/sdk.md lacks error codes {missing}"


class TestReadme:
    """The README gives the two quick-start commands that CI and newcomers rely on."""

    def test_commands(self) -> None:
        text = (ROOT / "README.md").read_text()
        assert "trailkeep serve" in text
        assert "scripts/test" in text
        assert "scripts/test" in (ROOT / ".ci" / "run").read_text()

    def test_shell_variables_are_set_before_use(self) -> None:
        """Every $NAME a README command uses was assigned (or exported) above it."""
        text = (ROOT / "README.md").read_text()
        assigned: set[str] = set()
        for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
            for line in block.splitlines():
                used = set(re.findall(r"\$\{?([A-Z_]+)", line.split("#")[0]))
                assert used <= assigned | {"PWD", "HOME"}, f"{used - assigned} unset in: {line}"
                assigned |= set(re.findall(r"(?:^|\s)([A-Z_]+)=", line))


class TestReadmeExample:
    """The README's search example finds the event the README logs."""

    @pytest.mark.asyncio
    async def test_search_finds_the_logged_event(self, client: Any, acme: Any) -> None:
        text = (ROOT / "README.md").read_text()
        body = re.search(r"-d '(\{.*?\})'", text, re.DOTALL)
        query = re.search(r"trailkeep search '([^']+)'", text)
        assert body
        assert query
        logged = await client.post("/v1/events", json=json.loads(body.group(1)),
                                   headers=acme.auth("writer"))  # fmt: skip
        assert logged.status_code == 201, logged.text
        await client.post("/v1/events", json={"action": "other"}, headers=acme.auth("writer"))
        found = await client.get("/v1/events", params={"q": query.group(1)},
                                 headers=acme.auth("reader"))  # fmt: skip
        assert found.status_code == 200, found.text
        assert [e["id"] for e in found.json()["events"]] == [logged.json()["id"]]
