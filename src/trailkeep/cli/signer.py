"""``trailkeep signer``: what the checkpoint signer remembers beside its key, and the operator's
way out when a restored database no longer extends it."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trailkeep.errors import TrailkeepError

from .common import DEFAULT_DATABASE, DatabaseOpt, command_group, err, fail, out

if TYPE_CHECKING:
    from trailkeep.service.log import LogService

__all__ = ["signer_app"]

signer_app = command_group(
    help="The checkpoint signer's memory of what it signed, kept beside its key file"
    " (works on the key file and the database directly).",
)

SigningKeyOpt = Annotated[
    Path,
    typer.Option(
        envvar="TRAILKEEP_SIGNING_KEY",
        help="The server's signing key file; its state is <file>.state beside it.",
    ),
]
DEFAULT_KEY = Path("./trailkeep-signing.key")
StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state",
        envvar="TRAILKEEP_SIGNER_STATE",
        help="The signer's state file, if not <signing key>.state (the server's"
        " TRAILKEEP_SIGNER_STATE).",
    ),
]


@contextmanager
def _log_service(database: str, signing_key: Path, state_file: Path | None) -> Iterator[LogService]:
    from trailkeep.service.log import LogService
    from trailkeep.service.signer_state import SignerState, state_path
    from trailkeep.service.signing import load_existing_signer

    from .database import open_existing

    try:
        signer = load_existing_signer(signing_key)
        state = SignerState(state_file or state_path(signing_key), signer.verifier())
    except TrailkeepError as exc:
        fail(exc.message, "pass the server's --signing-key and --database")
    store = open_existing(database)  # never creates a database
    try:
        yield LogService(store, signer, signer.name, state=state)
    finally:
        store.close()


@signer_app.command("status")
def status_cmd(
    database: DatabaseOpt = DEFAULT_DATABASE,
    signing_key: SigningKeyOpt = DEFAULT_KEY,
    state: StateOpt = None,
) -> None:
    """Compare the last checkpoint signed per tenant with the database; exit 2 if a tenant's
    database tree does not extend it (the server refuses writes to that tenant)."""
    forked = False
    with _log_service(database, signing_key, state) as log:
        try:
            compared = log.compare_remembered()
        except TrailkeepError as exc:
            fail(exc.message)
    for signed, fork in compared:
        if fork is None:
            out.print(f"[green]OK[/] {signed.tenant_id}: the database extends the checkpoint"
                      f" signed at size {signed.size}")  # fmt: skip
            continue
        forked = True
        out.print(f"[bold red]FORKED[/] {fork.describe()}", highlight=False)
    if not compared:
        err.print(f"{log.state.path} remembers no checkpoint yet")
    if forked:
        raise typer.Exit(2)


@signer_app.command("accept-database")
def accept_database_cmd(
    tenant: Annotated[str, typer.Option(help="The tenant whose database to accept.")],
    reason: Annotated[
        str, typer.Option(help="Why (the audit event's message); say which backup and why.")
    ] = "",
    database: DatabaseOpt = DEFAULT_DATABASE,
    signing_key: SigningKeyOpt = DEFAULT_KEY,
    state: StateOpt = None,
) -> None:
    """Accept a tenant's database as it is (e.g. a restored backup) although it does not
    extend the last checkpoint signed: records the decision as an audit event in the tenant's
    log, signs the database's head and allows writes again. Run it once per signing key file."""
    with _log_service(database, signing_key, state) as log:
        try:
            accepted = log.accept_database(tenant, getpass.getuser(), reason)
        except TrailkeepError as exc:
            fail(exc.message)
    if accepted is None:
        out.print(f"nothing to accept: the database of {tenant} extends the last checkpoint"
                  " signed; writes are not refused")  # fmt: skip
        return
    out.print(f"accepted: {accepted.fork.describe()}", markup=False, highlight=False)
    out.print(f"recorded as event {accepted.event.id} (seq {accepted.event.seq}); signed"
              f" checkpoint of size {accepted.checkpoint.size}; running servers allow writes"
              " to the tenant within a checkpoint interval")  # fmt: skip
