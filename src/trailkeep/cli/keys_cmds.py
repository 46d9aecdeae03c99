"""``trailkeep keys create | list | revoke``: on the database, or over the API with a token.

Without ``--token`` a command opens the database (``--database``), as the first operator key
must be issued; with ``--token`` (an operator key, or an admin key of the tenant) it asks the
server at ``--url``, from any machine. Either way the server's admin trail records the act
(``key.create``, ``key.revoke``): a command on the database writes the event itself, with the
operating-system login as the actor.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from trailkeep.errors import TrailkeepError

from .client_cmds import DEFAULT_URL, UrlOpt, _connect, _talking_to
from .common import DEFAULT_DATABASE, DatabaseOpt, command_group, fail, out

if TYPE_CHECKING:
    from trailkeep.model.tenant import ApiKey

__all__ = ["check_names", "keys_app"]

keys_app = command_group(
    help="Issue, list and revoke API keys: on the database, or over the API with --token.",
)

AdminTokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="TRAILKEEP_ADMIN_TOKEN",
        show_default=False,
        help="Act over the API at --url with this operator key (or the tenant's admin key)"
        " instead of on the database.",
        rich_help_panel="Over the API",
    ),
]
TenantOpt = Annotated[str | None, typer.Option(help="Tenant (omit for operator keys).")]


def check_names(tenant: str | None, key_name: str = "") -> None:
    """Refuse a malformed tenant or key name (exit 2, naming the rule) before opening anything."""
    from trailkeep.errors import ValidationFailedError
    from trailkeep.model.tenant import validate_key_name, validate_tenant_id

    try:
        if tenant is not None:
            validate_tenant_id(tenant)
        validate_key_name(key_name)
    except ValidationFailedError as exc:
        fail(exc.message, status=2)


def _expiry(expires: str | None) -> str | None:
    """``--expires`` as the time it names (exit 2 if it is no future time)."""
    if expires is None:
        return None
    from trailkeep.service.admin import key_expiry

    try:
        return key_expiry(expires)
    except TrailkeepError as exc:
        fail(exc.message, "e.g. --expires 30d, --expires 2027-01-01", status=2)


def _needs_tenant(tenant: str | None) -> str:
    if tenant is None:
        fail("over the API a key belongs to a tenant: pass --tenant",
             "operator keys are issued on the database (omit --token)", status=2)  # fmt: skip
    return tenant


def _administration(database: str):  # type: ignore[no-untyped-def]
    # Imported here so `trailkeep --help` and client commands stay fast and server-free.
    from trailkeep.service.admin import Administration

    from .database import open_existing

    store = open_existing(database)  # never creates one: only `serve` and `init` do
    return store, Administration(store)


def _print_issued(issued: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(issued) + "\n")
        return
    expiry = f"\nexpires:   {issued['expires_at']}" if issued.get("expires_at") else ""
    out.print(
        f"client id: {issued['client_id']}\nsecret:    {issued['client_secret']}\n"
        f"token:     [bold]{issued['token']}[/]{expiry}\n[dim]the secret is shown only once[/]"
    )


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="writer, reader, admin, or operator (no tenant).")],
    tenant: Annotated[str | None, typer.Option(help="Tenant the key acts in.")] = None,
    name: Annotated[str, typer.Option(help="A label to recognize the key by.")] = "",
    expires: Annotated[
        str | None,
        typer.Option(
            help="When the key stops working: a duration from now (30d, 12h) or a time"
            " (2027-01-01). Default: never.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    database: DatabaseOpt = DEFAULT_DATABASE,
    url: UrlOpt = DEFAULT_URL,
    token: AdminTokenOpt = None,
) -> None:
    """Issue a key and print its token and secret (shown only now; stored hashed)."""
    from trailkeep.model.tenant import Role

    try:
        role_value = Role(role)
    except ValueError:
        fail(f"unknown role {role!r}", "use one of: writer, reader, admin, operator")
    check_names(tenant, name)
    expires_at = _expiry(expires)
    if token:
        with _connect(url, token, None) as tk, _talking_to(url):
            issued = tk.create_key(_needs_tenant(tenant), role, name=name, expires=expires)
        _print_issued(issued, as_json)
        return
    from trailkeep.service.admin_trail import Actor

    store, admin = _administration(database)
    try:
        made = admin.create_key(tenant, role_value, Actor.cli(), name=name, expires_at=expires_at)
    except TrailkeepError as exc:
        fail(exc.message, "create the tenant first with: trailkeep tenants create NAME")
    finally:
        store.close()
    _print_issued(made.to_json(), as_json)


def _key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "client_id": key.client_id,
        "tenant": key.tenant_id,
        "role": key.role.value,
        "name": key.name,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
    }


@keys_app.command("list")
def keys_list(
    tenant: TenantOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one array).")] = False,
    database: DatabaseOpt = DEFAULT_DATABASE,
    url: UrlOpt = DEFAULT_URL,
    token: AdminTokenOpt = None,
) -> None:
    """List keys with when each was last used (to within a minute) and expires; never
    their secrets."""
    if token:
        with _connect(url, token, None) as tk, _talking_to(url):
            keys = tk.list_keys(_needs_tenant(tenant))
    else:
        store, admin = _administration(database)
        try:
            keys = [_key_json(k) for k in admin.records.list_keys(tenant)]
        finally:
            store.close()
    if as_json:
        sys.stdout.write(json.dumps(keys) + "\n")
        return
    table = Table("client id", "role", "name", "created", "last used", "expires", "revoked")
    for k in keys:
        table.add_row(
            k["client_id"], k["role"], k["name"], k["created_at"],
            k.get("last_used_at") or "never", k.get("expires_at") or "", k["revoked_at"] or "",
        )  # fmt: skip
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    client_id: Annotated[str, typer.Argument(help="The key's client id.")],
    tenant: TenantOpt = None,
    database: DatabaseOpt = DEFAULT_DATABASE,
    url: UrlOpt = DEFAULT_URL,
    token: AdminTokenOpt = None,
) -> None:
    """Revoke a key; servers refuse it within seconds."""
    if token:
        with _connect(url, token, None) as tk, _talking_to(url):
            tk.revoke_key(_needs_tenant(tenant), client_id)
        out.print(f"revoked {client_id}")
        return
    from trailkeep.service.admin_trail import Actor

    store, admin = _administration(database)
    try:
        admin.revoke_key(client_id, tenant, Actor.cli())
    except TrailkeepError as exc:
        fail(exc.message)
    finally:
        store.close()
    out.print(f"revoked {client_id}")
