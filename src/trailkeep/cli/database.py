"""Opening the database for an admin command: only ``serve`` and ``init`` may create one.

An admin command run in the wrong directory used to create an empty ``./trailkeep.db`` and
work on it, so the keys it issued were unknown to the running server. Now a missing SQLite
file is an error that says where the command looked and how to point it elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from trailkeep.errors import TrailkeepError

from .common import err

if TYPE_CHECKING:
    from trailkeep.storage.base import Store

__all__ = ["EXIT_NO_DATABASE", "missing_sqlite_file", "open_existing"]

#: Exit status of a command that found no database where it looked (docs/cli.md).
EXIT_NO_DATABASE = 4


def missing_sqlite_file(url: str) -> Path | None:
    """The absolute path of a ``sqlite:///PATH`` URL whose file does not exist, else None.

    PostgreSQL URLs return None: their database is created by the operator (``createdb``),
    and connecting to one that does not exist already fails with the server's message.
    """
    from trailkeep.service.stores import sqlite_path

    if not url.startswith("sqlite:"):
        return None
    path = sqlite_path(url)
    if path == ":memory:":
        return None
    absolute = Path(path).expanduser().resolve()
    return None if absolute.is_file() else absolute


def open_existing(url: str) -> Store:
    """Open (and migrate) the store at ``url``; exit with ``EXIT_NO_DATABASE`` if it is missing."""
    from trailkeep.service.stores import open_store

    try:
        missing = missing_sqlite_file(url)
        if missing is not None:
            err.print(f"[bold red]error:[/] no database at {missing} (--database {url})",
                      highlight=False, soft_wrap=True)  # fmt: skip
            err.print(
                "[dim]run the command where the server runs, or pass --database / set"
                " TRAILKEEP_DATABASE to the server's database; `trailkeep init` creates a new"
                " one[/]",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_NO_DATABASE)
        return open_store(url)
    except TrailkeepError as exc:
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_NO_DATABASE) from None
