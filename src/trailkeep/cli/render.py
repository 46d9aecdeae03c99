"""How the client commands show events: a table, one line each, or JSON."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from rich import box
from rich.table import Table
from rich.text import Text

__all__ = ["event_line", "event_table", "write_json", "write_jsonl"]


def _who(obj: Any, *keys: str) -> str:
    if not isinstance(obj, Mapping):
        return ""
    for key in keys:
        value = obj.get(key)
        if value:
            return str(value) if not isinstance(value, Mapping) else "(redacted)"
    return ""


def _target(event: Mapping[str, Any]) -> str:
    target = event.get("target")
    kind, ident = _who(target, "type"), _who(target, "id", "name")
    return f"{kind}:{ident}" if kind and ident else kind or ident


def _seconds(timestamp: str) -> str:
    """``2026-11-23T10:00:05.123456Z`` → ``2026-11-23 10:00:05``: a table row has little room."""
    return timestamp[:19].replace("T", " ") if timestamp.endswith("Z") else timestamp


_OUTCOME_STYLE = {"success": "green", "failure": "red"}


def event_table(events: Iterable[Mapping[str, Any]]) -> Table:
    """A table of events; every cell is plain text (event data is never read as markup)."""
    rows = list(events)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    # The id is what `trailkeep show` needs: never cut it; the other columns give way.
    for name in ("time (UTC)", "action", "outcome", "actor", "target", "seq", "id"):
        widest = max((len(str(e.get(name, ""))) for e in rows), default=0)
        fixed = name in ("seq", "id")
        table.add_column(name, no_wrap=fixed, min_width=widest if fixed else None)
    for event in rows:
        outcome = str(event.get("outcome", ""))
        table.add_row(
            Text(_seconds(str(event.get("timestamp", "")))),
            Text(str(event.get("action", "")), style="bold"),
            Text(outcome, style=_OUTCOME_STYLE.get(outcome, "")),
            Text(_who(event.get("actor"), "id", "email", "name")),
            Text(_target(event)),
            Text(str(event.get("seq", ""))),
            Text(str(event.get("id", "")), style="dim"),
        )
    return table


def event_line(event: Mapping[str, Any]) -> Text:
    """One line per event, for ``tail``; it ends with the id, for ``trailkeep show``."""
    outcome = str(event.get("outcome", ""))
    line = Text()
    line.append(str(event.get("timestamp", "")), style="dim")
    line.append("  ")
    line.append(str(event.get("action", "")), style="bold")
    line.append(f"  {outcome}", style=_OUTCOME_STYLE.get(outcome, ""))
    actor, target = _who(event.get("actor"), "id", "email", "name"), _target(event)
    if actor or target:
        line.append(f"  {actor or '-'} → {target or '-'}")
    line.append(f"  #{event.get('seq')}  {event.get('id', '')}", style="dim")
    return line


def write_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def write_jsonl(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()
