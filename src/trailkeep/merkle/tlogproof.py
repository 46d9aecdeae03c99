"""C2SP transparency-log proofs (c2sp.org/tlog-proof): the offline receipt for one event.

A receipt bundles what a verifier needs besides the event itself::

    c2sp.org/tlog-proof@v1
    extra <base64 opaque data>        (optional, not authenticated)
    index <leaf index, decimal>
    <base64 hash>                     (zero or more: the inclusion proof, leaf's sibling first)

    <the checkpoint note, verbatim, signatures included>

``format_tlog_proof`` writes one, ``parse_tlog_proof`` reads one strictly (it checks the syntax
of the embedded note and checkpoint too), and ``verify_tlog_proof`` checks the checkpoint's
signature and the inclusion of a leaf hash.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from trailkeep.errors import InvalidInputError
from trailkeep.merkle._text import b64decode_canonical, parse_uint64
from trailkeep.merkle.checkpoint import Checkpoint, open_checkpoint
from trailkeep.merkle.errors import MalformedNoteError, MalformedTlogProofError
from trailkeep.merkle.hasher import RFC9162, LogHasher
from trailkeep.merkle.keys import Verifier
from trailkeep.merkle.note import parse_note
from trailkeep.merkle.verify import verify_inclusion

__all__ = [
    "TLOG_PROOF_HEADER",
    "TlogProof",
    "format_tlog_proof",
    "parse_tlog_proof",
    "verify_tlog_proof",
]

TLOG_PROOF_HEADER: Final = "c2sp.org/tlog-proof@v1"
_HASH_SIZE: Final = 32


@dataclass(frozen=True, slots=True)
class TlogProof:
    """A parsed receipt; only its syntax has been checked.

    Attributes:
        index: the leaf index.
        hashes: the inclusion proof, lowest level first, 32 bytes each.
        checkpoint: the signed checkpoint note, verbatim.
        extra: the opaque extra data, or None when the receipt has no ``extra`` line.
    """

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def to_text(self) -> str:
        """The receipt text (``.tlog-proof`` file contents)."""
        return format_tlog_proof(self.index, self.hashes, self.checkpoint, self.extra)


def format_tlog_proof(
    index: int, hashes: Sequence[bytes], checkpoint_note: str, extra: bytes | None = None
) -> str:
    """Write a receipt for leaf ``index`` proven by ``hashes`` into the signed checkpoint.

    Args:
        index: the leaf index, ``0 <= index < 2**64``.
        hashes: the inclusion proof to the checkpoint's root, 32 bytes each.
        checkpoint_note: the signed checkpoint note, copied verbatim.
        extra: optional opaque bytes; written even when empty, omitted when None.

    Raises:
        InvalidInputError: an argument cannot be written in the format.
    """
    if parse_uint64(str(index)) is None:
        raise InvalidInputError(f"tlog-proof index must be in 0..2**64-1, got {index}")
    for position, value in enumerate(hashes):
        if len(value) != _HASH_SIZE:
            raise InvalidInputError(
                f"tlog-proof hash [{position}] must be {_HASH_SIZE} bytes, got {len(value)}"
            )
    lines = [TLOG_PROOF_HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode("ascii"))
    lines.append(f"index {index}")
    lines.extend(base64.b64encode(value).decode("ascii") for value in hashes)
    return "\n".join(lines) + "\n\n" + checkpoint_note


def parse_tlog_proof(text: str | bytes) -> TlogProof:
    """Read a receipt, rejecting anything but the exact c2sp.org/tlog-proof@v1 syntax.

    Raises:
        MalformedTlogProofError: the message names the first line that is wrong, including
            problems in the embedded checkpoint note.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedTlogProofError(
                f"tlog-proof is not valid UTF-8 at byte {exc.start}"
            ) from None
    header, _, rest = text.partition("\n")
    if header != TLOG_PROOF_HEADER:
        raise MalformedTlogProofError(
            f"tlog-proof must start with the line {TLOG_PROOF_HEADER!r}, got {header[:40]!r}"
        )
    line, rest = _next_line(rest, "index")
    extra = None
    if line.startswith("extra "):
        extra = b64decode_canonical(line[len("extra ") :])
        if extra is None:
            raise MalformedTlogProofError("tlog-proof extra data is not canonical base64")
        line, rest = _next_line(rest, "index")
    index_text = line.removeprefix("index ")
    index = parse_uint64(index_text) if line.startswith("index ") else None
    if index is None:
        raise MalformedTlogProofError(
            f"tlog-proof line {line[:40]!r} is not 'index <decimal below 2**64, no leading zeros>'"
        )
    hashes: list[bytes] = []
    line, rest = _next_line(rest, "blank line before the checkpoint")
    while line:
        value = b64decode_canonical(line)
        if value is None or len(value) != _HASH_SIZE:
            raise MalformedTlogProofError(
                f"tlog-proof hash [{len(hashes)}] {line[:60]!r} is not canonical base64 of "
                f"{_HASH_SIZE} bytes"
            )
        hashes.append(value)
        line, rest = _next_line(rest, "blank line before the checkpoint")
    try:
        Checkpoint.parse(parse_note(rest).text)
    except MalformedNoteError as exc:
        raise MalformedTlogProofError(f"tlog-proof checkpoint: {exc.message}") from None
    return TlogProof(index, tuple(hashes), rest, extra)


def verify_tlog_proof(
    proof: TlogProof,
    leaf_hash: bytes,
    verifier: Verifier,
    origin: str | None = None,
    hasher: LogHasher = RFC9162,
) -> Checkpoint:
    """Check a receipt for ``leaf_hash``: the checkpoint's signature, then the inclusion proof.

    Args:
        proof: a parsed receipt.
        leaf_hash: the hash of the leaf the caller recomputed from the event.
        verifier: the log's pinned key.
        origin: the expected log; None skips the check.
        hasher: the tree's hasher.

    Returns:
        The verified checkpoint the leaf is included in.

    Raises:
        NoteError: the checkpoint does not verify (a subclass names why).
        ProofError: the leaf is not proven to be at ``proof.index`` under that checkpoint.
    """
    checkpoint = open_checkpoint(proof.checkpoint, verifier, origin)
    verify_inclusion(
        hasher, proof.index, checkpoint.size, leaf_hash, proof.hashes, checkpoint.root_hash
    )
    return checkpoint


def _next_line(text: str, wanted: str) -> tuple[str, str]:
    line, newline, rest = text.partition("\n")
    if not newline:
        raise MalformedTlogProofError(f"tlog-proof ends before the {wanted}")
    return line, rest
