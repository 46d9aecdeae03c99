"""Client commands: ``log``, ``search``, ``tail``, ``show``, ``export`` and ``verify event-id``,
talking to a running server through the SDK (``trailkeep.client``)."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
import typer
from rich.markup import escape

from .common import err, fail, out
from .render import event_line, event_table, write_json, write_jsonl

if TYPE_CHECKING:
    from trailkeep.client import Client, VerifiedEvent

__all__ = ["EXIT_FILE_EXISTS", "register_client_commands"]

#: Exit status of ``export -o FILE`` when FILE exists and ``--force`` was not given.
EXIT_FILE_EXISTS = 6
DEFAULT_URL = "http://127.0.0.1:8000"
PANEL = "Client (talks to a server)"

UrlOpt = Annotated[
    str,
    typer.Option("--url", envvar="TRAILKEEP_URL", help="The server's URL.",
                 rich_help_panel="Connection"),
]  # fmt: skip
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="TRAILKEEP_TOKEN", show_default=False,
                 help="API token (from `trailkeep keys create`).", rich_help_panel="Connection"),
]  # fmt: skip
OrgOpt = Annotated[
    str | None,
    typer.Option("--org", envvar="TRAILKEEP_ORG_ID", show_default=False,
                 help="Tenant to act in (operator keys only).", rich_help_panel="Connection"),
]  # fmt: skip
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", envvar="TRAILKEEP_PUBLIC_KEY", show_default=False,
                 help="The log's public key (or a file holding it), pinned beforehand. Without"
                      " it the server's own key is used (trust on first use)."),
]  # fmt: skip


def _many(flag: str, text: str) -> Any:
    return typer.Option(flag, help=text, show_default=False, rich_help_panel="Filters")


ActionOpt = Annotated[list[str] | None, _many("--action", "Only this action (repeatable).")]
CategoryOpt = Annotated[list[str] | None, _many("--category", "Only this category.")]
OutcomeOpt = Annotated[list[str] | None, _many("--outcome", "success, failure or unknown.")]
ActorOpt = Annotated[list[str] | None, _many("--actor-id", "Only this actor id.")]
TargetOpt = Annotated[list[str] | None, _many("--target-id", "Only this target id.")]
FilterOpt = Annotated[
    list[str] | None,
    _many("--filter", "Any filter as NAME=VALUE, e.g. actor.email=a@x.io (repeatable)."),
]
QueryOpt = Annotated[
    str | None,
    _many("--q", "Search-language query, e.g. 'login AND NOT outcome:success' (docs/search.md)."),
]
QueryArg = Annotated[
    str | None,
    typer.Argument(help="Search-language query, e.g. bob or 'login AND NOT outcome:success'"
                        " (the same as --q).", show_default=False),
]  # fmt: skip
StartOpt = Annotated[
    str | None, _many("--start", "From this time (inclusive): 2026-11-23, now-1h, 7d...")
]
EndOpt = Annotated[str | None, _many("--end", "Until this time (exclusive).")]


def _filters(
    action: list[str] | None,
    category: list[str] | None,
    outcome: list[str] | None,
    actor_id: list[str] | None,
    target_id: list[str] | None,
    extra: list[str] | None,
    start: str | None,
    end: str | None,
) -> dict[str, Any]:
    """Options → the SDK's keyword filters; ``--filter actor.email=x`` → ``actor_email``."""
    from trailkeep.client._models import FILTER_NAMES

    by_api_name = {api: keyword for keyword, api in FILTER_NAMES.items()}
    given: dict[str, Any] = {
        "action": action, "category": category, "outcome": outcome, "actor_id": actor_id,
        "target_id": target_id, "start": start, "end": end,
    }  # fmt: skip
    for item in extra or []:
        name, eq, value = (part.strip() for part in item.partition("="))
        keyword = name if name in FILTER_NAMES else by_api_name.get(name)
        if not eq or keyword is None:
            fail(f"--filter {item!r}: expected NAME=VALUE, NAME one of {', '.join(by_api_name)}")
        given[keyword] = [*(given.get(keyword) or []), value]
    return {k: v for k, v in given.items() if v}


def _query(positional: str | None, option: str | None) -> str | None:
    """The query given as the argument or as ``--q`` (not both)."""
    if positional is not None and option is not None:
        fail("give the query once: as the argument or as --q")
    return positional if positional is not None else option


def _connect(url: str, token: str | None, org: str | None, key: str | None = None) -> Client:
    from trailkeep.client import Client

    if not token:
        fail(
            "no API token",
            "pass --token or set TRAILKEEP_TOKEN (make one with: trailkeep keys create"
            " --tenant NAME --role reader)",
        )
    return Client(url, token=token, org_id=org, pin_public_key=_key(key) if key else None)


def say(style: str, text: str, *, to_stderr: bool = False) -> None:
    """One line on stdout (or stderr, when stdout carries JSON): ``style`` is Rich markup,
    ``text`` is shown as is, never wrapped."""
    (err if to_stderr else out).print(style + escape(text), highlight=False, soft_wrap=True)


def _key(value: str) -> str:
    path = Path(value)
    return path.read_text().strip() if path.is_file() else value.strip()


@contextmanager
def _talking_to(url: str) -> Iterator[None]:
    """Turn the SDK's errors into one clear line and a hint."""
    from trailkeep.client import (
        AuditError,
        AuthenticationError,
        ConnectError,
        ForbiddenError,
        RequestTimeoutError,
    )

    try:
        yield
    except ConnectError:
        fail(f"cannot reach {url}: is `trailkeep serve` running?", "set --url or TRAILKEEP_URL")
    except AuthenticationError as exc:
        fail(f"401: {escape(exc.message)}", "check TRAILKEEP_TOKEN (or --token)")
    except ForbiddenError as exc:
        fail(f"403: {escape(exc.message)}",
             "reading needs a reader or admin key; logging a writer or admin key")  # fmt: skip
    except RequestTimeoutError:
        fail(f"{url} did not answer in time")
    except AuditError as exc:
        fail(escape(str(exc)))


# -- log ---------------------------------------------------------------------------------


def _json_body(source: str) -> list[dict[str, Any]]:
    """A JSON object, a JSON array of objects, or JSON lines, from a file or ``-`` (stdin)."""
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        fail(f"cannot read {source}: {exc}")
    try:
        value = orjson.loads(raw)
        items = value if isinstance(value, list) else [value]
    except orjson.JSONDecodeError:
        try:
            items = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            fail(f"{source} is neither JSON nor JSON lines: {exc}")
    if not all(isinstance(i, dict) for i in items):
        fail(f"{source}: every event must be a JSON object")
    return items


def _metadata(pairs: list[str] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq:
            fail(f"--meta {pair!r}: expected KEY=VALUE")
        try:
            metadata[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            metadata[key] = value
    return metadata


def _lacking(event: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The option values for fields ``event`` does not have (``actor_id`` → ``actor.id``)."""
    kept = {}
    for name, value in fields.items():
        parent, _, child = name.partition("_")
        nested = event.get(parent)
        if name in event or (isinstance(nested, dict) and child in nested):
            continue
        kept[name] = value
    return kept


def log_cmd(
    action: Annotated[str | None, typer.Argument(help="What was done, e.g. user.login.")] = None,
    actor_id: Annotated[str | None, typer.Option(help="Who did it.")] = None,
    actor_type: Annotated[str | None, typer.Option(help="user, service, agent...")] = None,
    actor_email: Annotated[str | None, typer.Option()] = None,
    target_id: Annotated[str | None, typer.Option(help="What it was done to.")] = None,
    target_type: Annotated[str | None, typer.Option()] = None,
    category: Annotated[str | None, typer.Option()] = None,
    outcome: Annotated[str | None, typer.Option(help="success, failure or unknown.")] = None,
    message: Annotated[str | None, typer.Option(help="Free text.")] = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="metadata KEY=VALUE (JSON or text).")
    ] = None,
    timestamp: Annotated[str | None, typer.Option(help="When (default: now).")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Retry-safe key.")] = None,
    json_body: Annotated[
        str | None,
        typer.Option(
            "--json-body",
            help="Events from FILE or - (stdin): a JSON object, an"
            " array, or JSON lines. The options above fill fields they lack.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the stored events as JSON.")] = (
        False
    ),
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Record an audit event (or many, with --json-body)."""
    fields = {
        "action": action, "actor_id": actor_id, "actor_type": actor_type,
        "actor_email": actor_email, "target_id": target_id, "target_type": target_type,
        "category": category, "outcome": outcome, "message": message, "timestamp": timestamp,
        "idempotency_key": idempotency_key, "metadata": _metadata(meta) or None,
    }  # fmt: skip
    from trailkeep.client._models import event_body

    try:
        bodies = [event_body(e, _lacking(e, fields))
                  for e in (_json_body(json_body) if json_body else [{}])]  # fmt: skip
    except ValueError as exc:
        fail(str(exc), "give ACTION, or an action in each --json-body event")
    with _connect(url, token, org) as tk, _talking_to(url):
        stored = [tk.log(bodies[0])] if len(bodies) == 1 else tk.log_bulk(bodies)
    if as_json:
        write_json(stored[0] if len(stored) == 1 else stored)
        return
    for event in stored:
        say("", f"logged {event['id']} (seq {event['seq']})")


# -- search and tail ---------------------------------------------------------------------


def search_cmd(
    query: QueryArg = None,
    q: QueryOpt = None,
    action: ActionOpt = None,
    category: CategoryOpt = None,
    outcome: OutcomeOpt = None,
    actor_id: ActorOpt = None,
    target_id: TargetOpt = None,
    filters: FilterOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many events.")] = 20,
    oldest_first: Annotated[bool, typer.Option("--oldest-first", help="Sort ascending.")] = (False),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    as_jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON event per line.")] = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Find events, newest first: a table, or JSON with --json / --jsonl.

    `trailkeep search bob` finds events mentioning bob (docs/search.md)."""
    where = _filters(action, category, outcome, actor_id, target_id, filters, start, end)
    sort: Literal["asc", "desc"] = "asc" if oldest_first else "desc"
    text = _query(query, q)
    with _connect(url, token, org) as tk, _talking_to(url):
        found = tk.iter_events(text, sort=sort, page_size=min(limit + 1, 1000), **where)
        events = list(itertools.islice(found, limit + 1))
        if len(events) > limit:  # on stderr, so --json and --jsonl stay machine-readable
            err.print(f"[dim]{_capped(tk, text, where, limit)}: raise --limit or narrow the"
                      " search[/]", highlight=False)  # fmt: skip
    events = events[:limit]
    if as_json:
        write_json({"events": events})
    elif as_jsonl:
        for event in events:
            write_jsonl(event)
    elif not events:
        err.print("no events match")
    else:
        out.print(event_table(events))


def _capped(tk: Client, text: str | None, where: dict[str, Any], limit: int) -> str:
    """``20 of 20,000 shown`` (the total from ``GET /v1/facets``, exact for the same selection),
    or ``20 shown, more match`` if it cannot be counted."""
    from trailkeep.client import AuditError

    try:
        total = int(tk.facets(text, top=1, **where)["total"])
    except (AuditError, KeyError, TypeError, ValueError):
        return f"{limit} shown, more match"
    return f"{limit} of {total:,} shown"


def tail_cmd(
    query: QueryArg = None,
    q: QueryOpt = None,
    action: ActionOpt = None,
    category: CategoryOpt = None,
    outcome: OutcomeOpt = None,
    actor_id: ActorOpt = None,
    target_id: TargetOpt = None,
    filters: FilterOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    from_start: Annotated[
        bool, typer.Option("--from-start", help="Replay the log from its first event.")
    ] = False,
    after_seq: Annotated[
        int | None, typer.Option(help="Start after this seq (resume).", show_default=False)
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop after this many seconds.", show_default=False)
    ] = None,
    checkpoints: Annotated[
        bool, typer.Option("--checkpoints", help="Also print the signed checkpoints.")
    ] = False,
    as_jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON event per line.")] = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Follow the live stream: print events as they are written (Ctrl-C to stop).

    A dropped connection resumes where it stopped, with nothing missed or repeated."""
    from trailkeep.client import StreamCheckpoint

    where = _filters(action, category, outcome, actor_id, target_id, filters, start, end)
    position = -1 if from_start else after_seq
    with _connect(url, token, org) as tk, _talking_to(url):
        try:
            items = tk.stream(
                _query(query, q), after_seq=position, timeout=timeout, checkpoints=True, **where
            )
            for item in items:
                if isinstance(item, StreamCheckpoint):
                    if checkpoints:
                        _print_checkpoint(item, as_jsonl)
                elif as_jsonl:
                    write_jsonl(item)
                else:
                    out.print(event_line(item))
        except KeyboardInterrupt:
            raise typer.Exit(0) from None


def _print_checkpoint(item: Any, as_jsonl: bool) -> None:
    if as_jsonl:
        write_jsonl({"checkpoint": item.checkpoint.note, "size": item.size})
    else:
        say("[dim]", f"checkpoint: {item.checkpoint.origin} size {item.size} (every earlier"
                     " matching event was printed above)")  # fmt: skip


# -- show and verify ---------------------------------------------------------------------


def _prove(tk: Client, event_id: str, key: str | None, wait: float) -> VerifiedEvent:
    """Verify an event, waiting up to ``wait`` seconds for a checkpoint to cover it."""
    from trailkeep.client import ConflictError

    deadline = time.monotonic() + wait
    while True:
        try:
            return tk.verify_event(event_id, public_key=_key(key) if key else None)
        except ConflictError as exc:
            if exc.code != "NOT_YET_CHECKPOINTED" or time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def _verdict(
    tk: Client, event_id: str, key: str | None, wait: float, *, to_stderr: bool = False
) -> None:
    """Print VERIFIED (and return) or why not (and exit 2; 3 when not yet checkpointed).

    With ``to_stderr`` (``show --json``) the verdict goes to stderr, so stdout stays JSON."""
    from trailkeep.client import ConflictError, VerificationError

    try:
        verified = _prove(tk, event_id, key, wait)
    except VerificationError as exc:
        say("[bold red]NOT VERIFIED[/] ", exc.message, to_stderr=to_stderr)
        raise typer.Exit(2) from None
    except ConflictError as exc:
        say("[yellow]PENDING[/] ", exc.message, to_stderr=to_stderr)
        raise typer.Exit(3) from None
    checkpoint = verified.checkpoint
    source = "pinned key" if key else "the server's key: pin it with --key"
    say("[bold green]VERIFIED[/] ", f"leaf {verified.event['seq']} of {checkpoint.origin}"
                                   f" at size {checkpoint.size} ({source})",
        to_stderr=to_stderr)  # fmt: skip


def show_cmd(
    event_id: Annotated[str, typer.Argument(help="The event's id (evt_...).")],
    key: KeyOpt = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for a checkpoint covering a new event.")
    ] = 5.0,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the event as JSON on stdout; the verdict on stderr."),
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Show an event and prove it is in the log, unchanged: VERIFIED, or why not."""
    with _connect(url, token, org) as tk, _talking_to(url):
        event = tk.describe(event_id)
        if as_json:
            write_json(event)
        else:
            out.print_json(data=event)
        _verdict(tk, event_id, key, wait, to_stderr=as_json)


def verify_event_id_cmd(
    event_id: Annotated[str, typer.Argument(help="The event's id (evt_...).")],
    key: KeyOpt = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a checkpoint.")] = 5.0,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Fetch an event's proof from a server and verify it (exit 2 if it does not verify)."""
    with _connect(url, token, org) as tk, _talking_to(url):
        _verdict(tk, event_id, key, wait)


# -- export ------------------------------------------------------------------------------


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    JSON = "json"
    CSV = "csv"
    BUNDLE = "bundle"


def export_cmd(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write.", show_default=False)
    ] = None,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="jsonl is verifiable; json; csv; bundle proves the selection complete.",
        ),
    ] = ExportFormat.JSONL,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the output file if it exists.")
    ] = False,
    seq_start: Annotated[
        int | None, typer.Option(min=0, help="bundle: the first seq it covers (default 0).")
    ] = None,
    seq_end: Annotated[
        int | None, typer.Option(min=0, help="bundle: the seq it stops before (default: all).")
    ] = None,
    q: QueryOpt = None,
    action: ActionOpt = None,
    category: CategoryOpt = None,
    outcome: OutcomeOpt = None,
    actor_id: ActorOpt = None,
    target_id: TargetOpt = None,
    filters: FilterOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Export matching events to a file, with a progress bar.

    A JSON-lines export of everything is a dump that `trailkeep verify dump` checks offline;
    a bundle (`--format bundle`) is checked, completeness included, by `trailkeep verify
    bundle`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    where = _filters(action, category, outcome, actor_id, target_id, filters, start, end)
    target = output or Path(f"trailkeep-export.{fmt.value}")
    if not force and target.exists():  # before the server creates (and audits) an export
        fail(f"{target} exists; not overwriting it", "pass --force to replace it, or another -o",
             status=EXIT_FILE_EXISTS)  # fmt: skip
    columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn())
    with _connect(url, token, org) as tk, _talking_to(url):
        seq_range = (seq_start, seq_end)
        created = tk.create_export(q, format=fmt.value, seq_range=seq_range, **where)
        if fmt is ExportFormat.BUNDLE:  # a line per leaf of the range
            first, last = created.seq_range or (0, created.size)
            total: int | None = last - first
        else:
            total = tk.get_export(created.id, count=True).events
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("export", total=total)
            written = tk.download_export(
                created,
                target,
                progress=lambda n: bar.update(task, completed=n),
                overwrite=force,  # a file that appeared meanwhile is not overwritten either
            )
    unit = "leaves" if fmt is ExportFormat.BUNDLE else "events"
    say("", f"wrote {written} {unit} to {target} (log size {created.size} at export)")
    if fmt is ExportFormat.BUNDLE:
        err.print(f"[dim]check it offline: trailkeep verify bundle {target} --key KEY[/]")
    elif fmt is ExportFormat.JSONL and not where and not q:
        err.print(f"[dim]check it offline: trailkeep verify dump {target} --key KEY[/]")


def register_client_commands(app: typer.Typer, verify_app: typer.Typer) -> None:
    """Add the client commands to the ``trailkeep`` app (and ``verify event-id``)."""
    app.command("log", rich_help_panel=PANEL)(log_cmd)
    app.command("search", rich_help_panel=PANEL)(search_cmd)
    app.command("tail", rich_help_panel=PANEL)(tail_cmd)
    app.command("show", rich_help_panel=PANEL)(show_cmd)
    app.command("export", rich_help_panel=PANEL)(export_cmd)
    verify_app.command("event-id")(verify_event_id_cmd)
