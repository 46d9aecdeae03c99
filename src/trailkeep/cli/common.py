"""What every command shares: consoles, the database option, failing with a hint."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

__all__ = [
    "DEFAULT_DATABASE",
    "DatabaseOpt",
    "command_group",
    "command_variables",
    "err",
    "fail",
    "out",
]

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


def command_group(help: str, **options: Any) -> typer.Typer:
    """A command group whose help is click's plain text.

    Typer's Rich help imports Markdown, Pygments and Rich's traceback module (~90-150 ms),
    which alone put ``trailkeep --help`` over its 0.3 s budget (docs/cli.md). Our own output
    (tables, progress, errors) still uses Rich.
    """
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, **options)


def fail(message: str, hint: str = "", *, status: int = 1) -> NoReturn:
    """Print the error and a hint, and exit: status 1, or 2 for input that breaks a rule."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    if hint:
        err.print(f"[dim]{hint}[/]")
    raise typer.Exit(status)


def command_variables(command: Any) -> set[str]:
    """Every environment variable a (click) command and its subcommands read options from."""
    names: set[str] = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        names.update([envvar] if isinstance(envvar, str) else envvar or [])
    for sub in getattr(command, "commands", {}).values():
        names |= command_variables(sub)
    return names
