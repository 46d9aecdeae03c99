"""deploy/: the systemd unit and the container file say only what trailkeep understands.

No image is built and no unit is started here (no network, no root): the unit goes through
``systemd-analyze verify`` when the machine has it, and both files are read the way their
tools read them and checked against the real command line and settings.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer

from trailkeep.cli.app import app as cli_app
from trailkeep.cli.common import command_variables
from trailkeep.settings import Settings, unknown_variables

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "trailkeep.service"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
INSTRUCTIONS = {"FROM", "RUN", "WORKDIR", "COPY", "ENV", "USER", "VOLUME", "EXPOSE",
                "HEALTHCHECK", "STOPSIGNAL", "CMD", "ENTRYPOINT", "ARG", "LABEL"}  # fmt: skip


def _serve_options() -> set[str]:
    serve: Any = typer.main.get_command(cli_app).commands["serve"]  # type: ignore[attr-defined]
    return {opt for param in serve.params for opt in param.opts}


def _check_command(argv: list[str]) -> None:
    """``trailkeep serve`` with only options that exist, and TRAILKEEP_* names that exist."""
    assert Path(argv[0]).name == "trailkeep", argv
    assert argv[1] == "serve", argv
    unknown = [a.split("=")[0] for a in argv[2:] if a.startswith("-")]
    assert set(unknown) <= _serve_options(), unknown


def _check_environment(env: dict[str, str]) -> None:
    known = command_variables(typer.main.get_command(cli_app))
    assert unknown_variables(env, known) == []
    fields = {f"TRAILKEEP_{name.upper()}": name for name in Settings.model_fields}
    Settings.model_validate({fields[k]: v for k, v in env.items() if k in fields})


def _unit() -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
            continue
        key, eq, value = line.partition("=")
        assert eq, f"not KEY=VALUE: {raw!r}"
        sections[current].append((key, value))
    return sections


class TestSystemdUnit:
    """deploy/trailkeep.service runs `trailkeep serve` with settings trailkeep reads."""

    def test_structure(self) -> None:
        unit = _unit()
        assert set(unit) == {"Unit", "Service", "Install"}
        service = dict(unit["Service"])
        _check_command(shlex.split(service["ExecStart"]))
        env = dict(v.split("=", 1) for k, v in unit["Service"] if k == "Environment")
        _check_environment({k: v for k, v in env.items() if k.startswith("TRAILKEEP_")})
        assert env["TRAILKEEP_DATABASE"].startswith("sqlite:////var/lib/trailkeep/")
        assert service["StateDirectory"] == "trailkeep"

    @pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
    def test_systemd_analyze_verify(self, tmp_path: Path) -> None:
        text = UNIT.read_text().replace("/opt/trailkeep/.venv/bin/trailkeep", "/bin/true")
        copy = tmp_path / "trailkeep.service"
        copy.write_text(text)
        command = ["systemd-analyze", "verify", str(copy)]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
        complaints = [line for line in result.stderr.splitlines() if str(copy) in line]
        assert result.returncode == 0
        assert complaints == []


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


class TestContainerfile:
    """deploy/Containerfile builds from the repository and serves on the port it exposes."""

    def test_structure(self) -> None:
        steps = _instructions()
        assert {word for word, _ in steps} <= INSTRUCTIONS
        assert steps[0][0] == "FROM"
        cmd = json.loads(dict(steps)["CMD"])
        _check_command(cmd)
        env = dict(shlex.split(pair)[0].split("=", 1) for w, rest in steps if w == "ENV"
                   for pair in shlex.split(rest))  # fmt: skip
        _check_environment({k: v for k, v in env.items() if k.startswith("TRAILKEEP_")})
        assert env["TRAILKEEP_HOST"] == "0.0.0.0"  # noqa: S104 (a container must listen outside)
        assert dict(steps)["EXPOSE"] == env["TRAILKEEP_PORT"]
        assert "/readyz" in dict(steps)["HEALTHCHECK"]

    def test_copied_paths_exist(self) -> None:
        for word, rest in _instructions():
            if word == "COPY":
                *sources, _ = shlex.split(rest)
                for source in sources:
                    assert (ROOT / source).exists(), source
