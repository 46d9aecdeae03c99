"""``trailkeep prune``: prune a tenant's expired events now, over the API (admin key)."""

from __future__ import annotations

from typing import Annotated

import typer

from .client_cmds import DEFAULT_URL, PANEL, OrgOpt, TokenOpt, UrlOpt, _connect, _talking_to, say
from .common import err

__all__ = ["prune_cmd", "register_prune_command"]


def prune_cmd(
    chunk: Annotated[
        int,
        typer.Option(
            "--chunk",
            min=1,
            help="Events per request; each request is one prune run, logged as one"
            " retention.prune event.",
        ),
    ] = 100_000,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, show_default=False, help="Stop after this many events."),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Prune the tenant's events older than its retention_days now (admin key).

    Content goes; id, seq and leaf stay, so every proof still verifies. Refused (409) under a
    legal hold or with no retention policy."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    total, first, last, cutoff = 0, None, None, ""
    columns = (SpinnerColumn(), TextColumn("pruning: {task.completed:,} events"))
    with (
        _connect(url, token, org) as tk,
        _talking_to(url),
        Progress(*columns, console=err, transient=True) as bar,
    ):
        task = bar.add_task("prune", total=None)
        while limit is None or total < limit:
            ask = chunk if limit is None else min(chunk, limit - total)
            run = tk.prune(limit=ask)
            total += run["pruned"]
            cutoff = run["cutoff"]
            if run["first_seq"] is not None:
                first = run["first_seq"] if first is None else min(first, run["first_seq"])
                last = run["last_seq"] if last is None else max(last, run["last_seq"])
            bar.update(task, completed=total)
            if run["done"]:
                break
    where = f" (seq {first}-{last})" if total else ""
    say("", f"pruned {total} events with a timestamp before {cutoff}{where}")


def register_prune_command(app: typer.Typer) -> None:
    app.command("prune", rich_help_panel=PANEL)(prune_cmd)
