"""Typer commands: ``serve``, ``tenants``, ``keys``, ``dump``; the client commands come from
``client_cmds`` and ``verify`` from its own module."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from trailkeep.errors import TrailkeepError

from .client_cmds import register_client_commands
from .common import (
    DEFAULT_DATABASE,
    DatabaseOpt,
    command_group,
    command_variables,
    err,
    fail,
    out,
)
from .keys_cmds import check_names, keys_app
from .operator_cmds import register_operator_commands
from .prune_cmd import register_prune_command
from .signer import signer_app
from .verify import verify_app

__all__ = ["app"]

app = command_group(
    "trailkeep: a multi-tenant, tamper-evident audit log.",
    name="trailkeep",
    pretty_exceptions_enable=False,
)
tenants_app = command_group(help="Create and list tenants (works on the database directly).")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(verify_app, name="verify")
app.add_typer(signer_app, name="signer")
register_client_commands(app, verify_app)
register_operator_commands(app)
register_prune_command(app)


def _services(database: str):  # type: ignore[no-untyped-def]
    # Imported here so `trailkeep --help` and client commands stay fast and server-free.
    from trailkeep.service.tenants import TenantService

    from .database import open_existing

    store = open_existing(database)  # never creates one: only `serve` and `init` do
    return store, TenantService(store)


@app.command()
def init(database: DatabaseOpt = DEFAULT_DATABASE) -> None:
    """Create (and migrate) a database, for admin commands to run before the first `serve`."""
    from trailkeep.service.stores import open_store

    from .database import missing_sqlite_file

    created = missing_sqlite_file(database)
    try:
        open_store(database).close()
    except TrailkeepError as exc:
        fail(escape(exc.message), "check --database (sqlite:///PATH or postgresql://...)")
    where = created or database
    out.print(
        f"{'created' if created else 'migrated'} database {where}", highlight=False, soft_wrap=True
    )


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(envvar="TRAILKEEP_HOST", help="Interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TRAILKEEP_PORT", help="TCP port.")] = 8000,
    database: DatabaseOpt = DEFAULT_DATABASE,
    signing_key: Annotated[
        Path,
        typer.Option(
            envvar="TRAILKEEP_SIGNING_KEY",
            help="Checkpoint signing key file (created, mode 0600, if missing).",
        ),
    ] = Path("./trailkeep-signing.key"),
    workers: Annotated[
        int,
        typer.Option(
            envvar="TRAILKEEP_WORKERS",
            min=1,
            help="Server processes sharing the port and the database (one per core).",
        ),
    ] = 1,
) -> None:
    """Start the HTTP server; other settings come from TRAILKEEP_* variables."""
    try:  # the server's dependencies are the `server` extra: SDK-only installs lack them
        import uvicorn
        from pydantic import ValidationError

        from trailkeep.api.app import create_app
        from trailkeep.api.services import Services
        from trailkeep.settings import Settings, unknown_variables
    except ImportError as exc:
        fail(f"`trailkeep serve` needs the server's dependencies ({exc.name} is missing)",
             "install them with: pip install 'trailkeep\\[server]'")  # fmt: skip

    known = command_variables(typer.main.get_command(app))
    for warning in unknown_variables(os.environ, known):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)

    try:
        settings = Settings(host=host, port=port, database=database, signing_key=signing_key)
        # Migrate and create the signing key once, before any worker starts.
        services = Services.build(settings)
    except ValidationError as exc:
        fail(
            f"invalid setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}",
            "check the TRAILKEEP_* environment variables (docs/configuration.md)",
        )
    except TrailkeepError as exc:
        fail(escape(exc.message), "check --database and the TRAILKEEP_* environment variables")
    key = services.log.signer.verifier().key_string()
    err.print(
        f"trailkeep serving on http://{host}:{port} (database {database}, {workers} worker(s))",
        highlight=False,
        soft_wrap=True,
    )
    if host in ("127.0.0.1", "localhost", "::1"):
        err.print("[dim]only this machine can connect: --host 0.0.0.0 (or TRAILKEEP_HOST)"
                  " listens on every interface[/]", highlight=False)  # fmt: skip
    err.print(f"checkpoint public key (pin it to verify): {key}", markup=False, highlight=False)
    options = {
        "host": host,
        "port": port,
        "log_level": settings.log_level,
        "access_log": False,
        # Live streams end at once on SIGTERM (api/shutdown.py); anything else still
        # running after the grace period is cancelled, so the process always exits.
        "timeout_graceful_shutdown": settings.shutdown_grace,
    }
    if workers == 1:
        # The app closes the services at shutdown: after a SIGTERM, uvicorn re-raises the
        # signal once it has stopped, so nothing after this call would run.
        uvicorn.run(create_app(settings, services, owns_services=True), **options)  # type: ignore[arg-type]
        return
    services.close()
    # Workers are new processes: they read their settings from the environment.
    os.environ.update(
        {
            "TRAILKEEP_HOST": host,
            "TRAILKEEP_PORT": str(port),
            "TRAILKEEP_DATABASE": database,
            "TRAILKEEP_SIGNING_KEY": str(signing_key),
        }
    )
    uvicorn.run("trailkeep.api.app:create_app", factory=True, workers=workers, **options)  # type: ignore[arg-type]


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="Tenant name: lower-case letters, digits, _ and -.")],
    database: DatabaseOpt = DEFAULT_DATABASE,
) -> None:
    """Create a tenant (recorded in the operator log, with your login as the actor)."""
    from trailkeep.service.admin import Administration
    from trailkeep.service.admin_trail import Actor

    check_names(name)
    store, _ = _services(database)
    try:
        tenant = Administration(store).create_tenant(name, Actor.cli())
    except TrailkeepError as exc:
        fail(exc.message)
    finally:
        store.close()
    out.print(f"created tenant [bold]{tenant.id}[/]")


@tenants_app.command("list")
def tenants_list(database: DatabaseOpt = DEFAULT_DATABASE) -> None:
    """List tenants."""
    store, tenants = _services(database)
    try:
        rows = tenants.list_tenants()
    finally:
        store.close()
    table = Table("tenant", "created")
    for t in rows:
        table.add_row(t.id, t.created_at)
    out.print(table)


@app.command()
def dump(
    tenant: Annotated[str, typer.Option(help="The tenant to dump.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write (JSON lines).")],
    database: DatabaseOpt = DEFAULT_DATABASE,
) -> None:
    """Write a whole-tenant dump (every event with its salts, up to the latest signed
    checkpoint) for `trailkeep verify dump`. Works on the database directly; recorded as an
    export (export.create) in the tenant's log, after the dumped checkpoint."""
    from rich.progress import Progress

    from trailkeep.service.admin_trail import Actor, record_admin_event
    from trailkeep.service.dump import DUMP_FORMAT, dump_lines
    from trailkeep.service.files import open_private

    store, _ = _services(database)
    try:
        total = store.latest_checkpoint(tenant)
        with Progress(console=err, transient=True) as bar, open_private(output) as fh:
            task = bar.add_task(f"dumping {tenant}", total=total.size if total else None)
            for line in dump_lines(store, tenant, total, partial(bar.advance, task)):
                fh.write(line)
        record_admin_event(
            store, tenant, "export.create", Actor.cli(), {"id": output.name, "type": "dump"},
            {"format": DUMP_FORMAT, "size": total.size if total else 0},
        )  # fmt: skip
    except TrailkeepError as exc:
        fail(exc.message, "start the server once so it signs a checkpoint, then dump again")
    finally:
        store.close()
    out.print(f"wrote {output}")
