"""What every command shares: consoles, the database option, failing with a hint."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console

__all__ = ["DEFAULT_DATABASE", "DatabaseOpt", "err", "fail", "out"]

err = Console(stderr=True)
out = Console()

DatabaseOpt = Annotated[
    str,
    typer.Option(
        "--database",
        envvar="TRAILKEEP_DATABASE",
        help="Database URL: sqlite:///PATH or postgresql://...",
    ),
]
DEFAULT_DATABASE = "sqlite:///./trailkeep.db"


def fail(message: str, hint: str = "") -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    if hint:
        err.print(f"[dim]{hint}[/]")
    raise typer.Exit(1)
