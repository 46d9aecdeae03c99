"""``trailkeep verify``: offline proofs, and the auditor's check of a live database."""

from __future__ import annotations

import gc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, NoReturn, TypeVar

import orjson
import typer

from trailkeep.errors import IntegrityError, TrailkeepError

if TYPE_CHECKING:
    from rich.progress import Progress

    from trailkeep.merkle import Verifier
    from trailkeep.service.audit import AuditReport
    from trailkeep.storage.base import Store

from .common import DEFAULT_DATABASE, DatabaseOpt, command_group, err, fail, out

#: ``service.audit.DEFAULT_MAX_GAP``, restated so ``--help`` imports no server module
#: (tests/cli/test_signer.py pins that the two agree).
DEFAULT_MAX_GAP = 300.0
#: What an offline verifier returns (its report).
R = TypeVar("R")

__all__ = ["verify_app"]

# The verifiers, rich.progress and the merkle package are imported inside the commands: at
# module level they would cost `trailkeep --help` (and every other command) ~0.5 s.


def _progress(label: str) -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=err, transient=True)


verify_app = command_group(
    help="Check events, checkpoints and dumps against a pinned public key, with no server;"
    " or re-check a database against its own checkpoints.",
)

KeyOpt = Annotated[
    str,
    typer.Option("--key", envvar="TRAILKEEP_PUBLIC_KEY",
                 help="The log's public key (GET /v1/log/key), or a file holding it."),
]  # fmt: skip


def _key(value: str) -> str:
    path = Path(value)
    return path.read_text().strip() if path.is_file() else value.strip()


def _load_json(path: Path) -> dict[str, object]:
    try:
        value = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        fail(f"cannot read {path} as JSON: {exc}")
    if not isinstance(value, dict):
        fail(f"{path} does not hold a JSON object")
    return value


#: Exit statuses of ``verify dump`` and ``verify bundle`` beyond 0 (verified) and 2 (FAILED).
NOT_THIS_KIND = 3  # the file is not a dump (or not a bundle): say what it is instead
INCOMPLETE = 5  # a bundle verified, but completeness cannot be shown for some leaves


def _verify_file(
    path: Path,
    unit: str,
    verify: Callable[[BinaryIO, str, Callable[[int, int], None]], R],
    key: str,
) -> R:
    """Run an offline verifier over a file with a progress bar counting ``unit``; an
    unreadable file or a file that does not verify ends the command (exit 1 or 2)."""
    try:
        with path.open("rb") as fh, _progress(path.name) as bar:
            task = bar.add_task(unit, total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return verify(fh, _key(key), progress)
    except OSError as exc:
        fail(f"cannot read {path}: {exc}")
    except TrailkeepError as exc:
        _failed(exc)


def _failed(exc: TrailkeepError) -> NoReturn:
    from trailkeep.client.verify import DumpFormatError

    if isinstance(exc, DumpFormatError):
        err.print(f"[bold red]NOT THIS KIND OF FILE[/] {exc.message}", highlight=False)
        raise typer.Exit(NOT_THIS_KIND)
    err.print(f"[bold red]FAILED[/] {exc.message}")
    raise typer.Exit(2)


@verify_app.command("event")
def verify_event_cmd(
    evidence: Annotated[Path, typer.Argument(help="JSON of GET /v1/events/{id}/proof.")],
    key: KeyOpt,
    receipt: Annotated[
        Path | None, typer.Option(help="A tlog-proof receipt to use instead.")
    ] = None,
) -> None:
    """Prove one event is in its tenant's log: recompute its commitments and leaf, check the
    inclusion proof and the checkpoint's signature."""
    from trailkeep.client.verify import verify_event

    data = _load_json(evidence)
    try:
        checkpoint = verify_event(data, _key(key), receipt.read_text() if receipt else None)
    except (TrailkeepError, KeyError, TypeError) as exc:
        _failed(exc if isinstance(exc, TrailkeepError) else IntegrityError(f"malformed: {exc}"))
    event = data["event"]
    assert isinstance(event, dict)
    out.print(f"[green]OK[/] event {event['id']} is leaf {event['seq']} of {checkpoint.origin}"
              f" at size {checkpoint.size}")  # fmt: skip


@verify_app.command("consistency")
def verify_consistency_cmd(
    old: Annotated[Path, typer.Argument(help="The older signed checkpoint (text).")],
    new: Annotated[Path, typer.Argument(help="The newer signed checkpoint (text).")],
    proof: Annotated[Path, typer.Option(help="JSON of GET /v1/log/proof/consistency.")],
    key: KeyOpt,
) -> None:
    """Prove the newer checkpoint extends the older one: nothing was changed or removed."""
    from trailkeep.client.verify import verify_checkpoints

    hashes = _load_json(proof).get("hashes")
    if not isinstance(hashes, list):
        fail(f"{proof} has no 'hashes' list")
    try:
        first, second = verify_checkpoints(old.read_text(), new.read_text(), hashes, _key(key))
    except TrailkeepError as exc:
        _failed(exc)
    out.print(f"[green]OK[/] {second.origin}: size {second.size} extends size {first.size}")


@verify_app.command("dump")
def verify_dump_cmd(
    dump: Annotated[Path, typer.Argument(help="A dump from `trailkeep dump` or the export API.")],
    key: KeyOpt,
) -> None:
    """Recompute every commitment, leaf and the root of a whole-tenant dump."""
    from trailkeep.client.verify import verify_dump

    report = _verify_file(dump, "events", verify_dump, key)
    pruned = f"; {report.pruned} pruned by retention, leaf only" if report.pruned else ""
    out.print(f"[green]OK[/] {report.events} events of {report.tenant_id} recompute to the"
              f" signed root of {report.checkpoint.origin} ({report.redacted_fields} erased"
              f" fields kept by commitment{pruned})")  # fmt: skip


@verify_app.command("bundle")
def verify_bundle_cmd(
    bundle: Annotated[
        Path, typer.Argument(help="A bundle from `trailkeep export --format bundle`.")
    ],
    key: KeyOpt,
) -> None:
    """Check a bundle with no server: the checkpoint's signature, every included event, every
    other leaf's disclosed fields and that they fail the filter, and the range's root; then
    say whether the selection is provably complete. Exit status 0 verified and complete, 2
    FAILED, 3 not a bundle, 5 verified but completeness cannot be shown for some leaves."""
    from rich.markup import escape

    from trailkeep.client.bundle import verify_bundle

    report = _verify_file(bundle, "leaves", verify_bundle, key)
    out.print(
        f"[green]OK[/] {report.events} events of {report.tenant_id} match"
        f" {escape(report.filter.describe())} in seq [{report.start}, {report.end}) of"
        f" {report.checkpoint.origin} (checkpoint size {report.checkpoint.size});"
        f" {report.excluded} other leaves shown not to match",
        highlight=False,
    )
    if report.complete:
        out.print("[green]COMPLETE[/] no matching event of the range is left out")
        return
    for line in report.gaps():
        out.print(f"[bold yellow]INCOMPLETE[/] {line}", highlight=False)
    raise typer.Exit(INCOMPLETE)


def _audit(
    store: Store, tenant_id: str, verifier: Verifier, origin: str, max_gap: float, deep: bool
) -> AuditReport:
    from trailkeep.service.audit import audit_tenant

    # The audit makes millions of short-lived tuples and no cycles: the cyclic collector would
    # only walk them again and again.
    gc.disable()
    try:
        with _progress(tenant_id) as bar:
            task = bar.add_task("events", total=store.tree_head(tenant_id).size)
            progress = partial(bar.advance, task)
            return audit_tenant(
                store, tenant_id, verifier, origin, progress, max_gap=max_gap, deep=deep
            )
    finally:
        gc.enable()


def _print_report(report: AuditReport) -> None:
    if report.ok:
        out.print(f"[green]OK[/] {report.tenant_id}: {report.events} events,"
                  f" {report.checkpoints} checkpoints verify")  # fmt: skip
        return
    out.print(f"[bold red]FAILED[/] {report.tenant_id}: {len(report.problems)} problems")
    for problem in report.problems[:200]:  # one line each, tenant first, for grep
        out.print(f"  {report.tenant_id} {problem}", markup=False, highlight=False)
    if len(report.problems) > 200:
        out.print(f"  ... and {len(report.problems) - 200} more")


def _held_notes(
    files: list[Path], state_file: Path | None, verifier: Verifier
) -> list[tuple[str, str]]:
    """(where it came from, note) of every checkpoint held outside the database: the files
    given, and those in the signer's state file if there is one."""
    from trailkeep.service.signer_state import SignerState

    held = []
    for path in files:
        try:
            held.append((str(path), path.read_text()))
        except OSError as exc:
            fail(f"cannot read checkpoint {path}: {exc}")
    if state_file is not None:
        state = SignerState(state_file, verifier)
        held += [(str(state.path), r.note) for _, r in sorted(state.read().items())]
    return held


def _check_held(store: Store, verifier: Verifier, held: list[tuple[str, str]]) -> bool:
    """Whether the database extends every held checkpoint; prints one line for each."""
    from trailkeep.service.forks import find_fork, held_checkpoint

    ok = True
    for source, note in held:
        try:
            signed = held_checkpoint(note, verifier)
        except TrailkeepError as exc:
            out.print(f"[bold red]FAILED[/] checkpoint in {source}: {exc.message}")
            ok = False
            continue
        fork = find_fork(store, signed)
        if fork is None:
            out.print(f"[green]OK[/] {signed.tenant_id}: the database extends the checkpoint"
                      f" of size {signed.size} held in {source}")  # fmt: skip
            continue
        ok = False
        out.print(f"[bold red]FAILED[/] {fork.describe()} (held in {source})", highlight=False)
    return ok


@verify_app.command("database")
def verify_database_cmd(
    database: DatabaseOpt = DEFAULT_DATABASE,
    tenant: Annotated[
        list[str] | None, typer.Option(help="Tenant(s); default every tenant.")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(envvar="TRAILKEEP_PUBLIC_KEY", help="Public key to check checkpoints with."),
    ] = None,
    signing_key: Annotated[
        Path,
        typer.Option(
            envvar="TRAILKEEP_SIGNING_KEY",
            help="Or take the public key from the server's signing key file (and check the"
            " database against the checkpoints its signer state beside it remembers).",
        ),
    ] = Path("./trailkeep-signing.key"),
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            envvar="TRAILKEEP_SIGNER_STATE",
            help="The signer's state file, if not <signing key>.state.",
        ),
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            help="A signed checkpoint kept outside the database (repeatable): the database's"
            " tree must have at least its size and the same root at that size.",
        ),
    ] = None,
    max_checkpoint_gap: Annotated[
        float,
        typer.Option(
            min=0,
            help="Report events that arrived over more than this many seconds with no stored"
            " checkpoint between them (a deleted checkpoint row); 0 turns the check off.",
        ),
    ] = DEFAULT_MAX_GAP,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="Also have SQLite re-tokenize every full-text row and check its FTS5 index"
            " against them (its own integrity-check), and hash every event's Pangea envelope"
            " against its Pangea leaf (several seconds per million events each).",
        ),
    ] = False,
) -> None:
    """The auditor's fsck: check everything of a live database that answers a query against
    what its log commits to — every row's leaf, its query columns, full-text row, facet
    rollups and erasure records, the tree and every signed checkpoint — naming the tenant,
    position and event of each problem, once; and compare it with checkpoints held outside
    it (``--checkpoint``, the signer's state), which catches a truncated tail; ``--deep`` adds
    the full-text index's own structure and each event's Pangea envelope."""
    from trailkeep.merkle import Verifier
    from trailkeep.service.signer_state import state_path
    from trailkeep.service.signing import load_existing_signer

    from .database import open_existing

    try:
        verifier = (Verifier.parse(_key(key)) if key
                    else load_existing_signer(signing_key).verifier())  # fmt: skip
        state_file = None if key else state or state_path(signing_key)
        held = _held_notes(checkpoint or [], state_file, verifier)
    except TrailkeepError as exc:
        fail(exc.message, "pass --key with the log's public key, or --signing-key")
    store = open_existing(database)
    server_name = verifier.name
    failed = False
    try:
        failed = not _check_held(store, verifier, held)
        tenants = tenant or [t.id for t in store.list_tenants()]
        for tenant_id in tenants:
            origin = f"{server_name}/{tenant_id}"
            report = _audit(store, tenant_id, verifier, origin, max_checkpoint_gap, deep)
            _print_report(report)
            failed = failed or not report.ok
        index = store.audit_fulltext_index() if deep else None
        if index is not None:
            failed = True
            out.print("[bold red]FAILED[/] full-text index:")
            out.print(f"  {index}", markup=False, highlight=False)
    except TrailkeepError as exc:
        fail(exc.message)
    finally:
        store.close()
    if failed:
        raise typer.Exit(2)
