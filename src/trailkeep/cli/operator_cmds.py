"""Operator commands over the API, with an admin token: ``redact`` and ``tenant show/set``.

Unlike ``tenants`` and ``keys`` (which open the database), these talk to a running server
through the SDK, like the client commands, so they work from any machine that can reach it
and every act is checked and logged by the server (DESIGN §10).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from .client_cmds import DEFAULT_URL, OrgOpt, TokenOpt, UrlOpt, _connect, _talking_to, say
from .common import command_group, fail
from .render import write_json

__all__ = ["register_operator_commands"]

PANEL = "Operator (talks to a server, admin token)"

tenant_app = command_group(
    help="Show and change the tenant's settings over the API (admin token).",
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def redact_cmd(
    event_id: Annotated[str, typer.Argument(help="The event's id (evt_...).")],
    fields: Annotated[
        list[str],
        typer.Option(
            "--field",
            help="A field path to erase, e.g. actor.email (repeatable).",
            show_default=False,
        ),
    ],
    reason: Annotated[
        str | None, typer.Option(help="Why (kept in the redaction's audit event).")
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Erase fields of an event (GDPR): values and salts go, proofs still verify."""
    with _connect(url, token, org) as tk, _talking_to(url):
        event = tk.redact(event_id, fields, reason=reason)
    if as_json:
        write_json(event)
        return
    say("", f"redacted {', '.join(fields)} of {event_id}")


def _value(text: str) -> Any:
    """``90`` → 90, ``none`` / ``null`` → None, anything else as given."""
    if text.lower() in ("none", "null", ""):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


@tenant_app.command("show")
def tenant_show_cmd(
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Print the tenant and its settings (retention_days, legal_hold, display_name)."""
    with _connect(url, token, org) as tk, _talking_to(url):
        tenant = tk.tenant()
    if as_json:
        write_json(tenant)
        return
    say("", f"tenant {tenant['id']} (created {tenant['created_at']})")
    for name, value in sorted(tenant.get("settings", {}).items()):
        say("", f"  {name} = {orjson.dumps(value).decode()}")


@tenant_app.command("set")
def tenant_set_cmd(
    settings: Annotated[
        list[str],
        typer.Argument(
            help="NAME=VALUE pairs: retention_days=90 (none: keep forever), or a preset"
            " retention=7d|30d|365d|community|professional|enterprise|forever;"
            " legal_hold=true|false; display_name='Acme Corp'.",
            show_default=False,
        ),
    ],
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Change tenant settings (only those named): retention, legal hold, display name.

    Each change is an audit event in the tenant's log (tenant.settings, legal_hold.set)."""
    changes: dict[str, Any] = {}
    for pair in settings:
        name, eq, value = pair.partition("=")
        if not eq or not name:
            fail(f"{pair!r}: expected NAME=VALUE", "e.g. trailkeep tenant set retention_days=90")
        changes[name.strip()] = _value(value.strip())
    with _connect(url, token, org) as tk, _talking_to(url):
        tenant = tk.update_tenant(**changes)
    if as_json:
        write_json(tenant)
        return
    say("", f"tenant {tenant['id']}: " + ", ".join(f"{k} = {v}" for k, v in changes.items()))


def register_operator_commands(app: typer.Typer) -> None:
    """Add ``redact`` and ``tenant`` to the ``trailkeep`` app."""
    app.command("redact", rich_help_panel=PANEL)(redact_cmd)
    app.add_typer(tenant_app, name="tenant", rich_help_panel=PANEL)
