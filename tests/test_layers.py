"""The import direction of DESIGN §1 holds: lower layers never import higher ones."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "trailkeep"

#: layer → the trailkeep layers it may import. ``errors`` is the shared root of the
#: exception tree and may be imported by every layer; ``settings`` is server configuration.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "model": {"errors"},
    "merkle": {"errors", "model"},
    "query": {"errors", "model", "merkle"},
    "storage": {"errors", "model", "merkle", "query"},
    "service": {"errors", "model", "merkle", "query", "storage"},
    "settings": set(),
    # The app factory mounts the viewer's pages, so api may import viewer; the viewer itself
    # reads nothing from the server (the browser calls the API), so it imports no layer.
    "api": {"errors", "model", "merkle", "query", "storage", "service", "settings", "viewer"},
    "viewer": {"errors", "settings"},
    "cli": {
        "errors",
        "model",
        "merkle",
        "query",
        "storage",
        "service",
        "settings",
        "api",
        "client",
    },
    "client": {"errors", "model", "merkle"},
    "__init__": set(),
    "__main__": {"cli"},
}


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imported_layers(path: Path, source: str | None = None) -> set[str]:
    """The trailkeep layers a module imports, relative imports resolved."""
    tree = ast.parse(path.read_text() if source is None else source)
    layers: set[str] = set()
    package = ".".join(("trailkeep", *path.relative_to(SRC).with_suffix("").parts[:-1]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names = [".".join([*base, node.module or ""]).rstrip(".")]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "trailkeep" and len(parts) > 1:
                layers.add(parts[1])
    return layers


MODULES = sorted(SRC.rglob("*.py"))


class TestImportDirection:
    """Every module imports only from its own layer and the layers below it."""

    @pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
    def test_module(self, path: Path) -> None:
        layer = _layer(path)
        assert layer in ALLOWED, f"{layer} is not a known layer; add it to ALLOWED"
        forbidden = _imported_layers(path) - ALLOWED[layer] - {layer}
        assert not forbidden, f"{path.relative_to(SRC)} imports {sorted(forbidden)}"

    def test_the_checker_sees_violations(self) -> None:
        """Guards against a checker that can never fail."""
        source = "from trailkeep.storage.base import Store\nfrom ..api import app\n"
        assert _imported_layers(SRC / "model" / "probe.py", source) == {"storage", "api"}


class TestServerFreeImports:
    """Importing the model, merkle or client packages loads no web framework or database driver."""

    @pytest.mark.parametrize(
        "module", ["trailkeep.model.commitments", "trailkeep.merkle", "trailkeep.client"]
    )
    def test_light_import(self, module: str) -> None:
        code = (
            f"import sys, {module}\n"
            "heavy = [m for m in ('fastapi', 'starlette', 'sqlite3', 'psycopg', 'uvicorn')"
            " if m in sys.modules]\n"
            "print(','.join(heavy))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == ""
