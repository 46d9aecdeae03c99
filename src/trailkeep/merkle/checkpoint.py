"""C2SP checkpoints (c2sp.org/tlog-checkpoint): the signed statement of a tree's size and root.

A checkpoint is the text of a signed note::

    <origin>                     e.g. trailkeep.example/acme
    <tree size, decimal>
    <base64 of the 32-byte root hash>
    [<extension line>...]

every line non-empty and ending in a newline. The server signs it with ``Signer.sign_note
(checkpoint.to_body())``; a client checks it with ``open_checkpoint``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from trailkeep.errors import InvalidInputError
from trailkeep.merkle._text import (
    MAX_UINT64,
    b64decode_canonical,
    find_forbidden_character,
    parse_uint64,
)
from trailkeep.merkle.errors import MalformedCheckpointError, OriginMismatchError
from trailkeep.merkle.keys import Verifier

__all__ = ["ROOT_HASH_SIZE", "Checkpoint", "open_checkpoint"]

ROOT_HASH_SIZE = 32
"""Checkpoints carry RFC 6962 (SHA-256) roots."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: origin, size and root hash, plus optional opaque extension lines.

    Attributes:
        origin: the log's identity; for trailkeep, ``<server name>/<tenant>``.
        size: the number of leaves, ``0 <= size < 2**64``.
        root_hash: the 32-byte root of the tree of that size.
        extensions: extra non-empty lines; C2SP advises against them (monitors cannot audit
            them), trailkeep writes none, and a parsed checkpoint keeps any it finds.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem is not None:
            raise InvalidInputError(f"invalid checkpoint: {problem}")

    def to_body(self) -> str:
        """The note text to sign: one line per field, each ending in a newline."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Read a checkpoint from the (verified) text of its note.

        Raises:
            MalformedCheckpointError: the text is not exactly a checkpoint body; the message
                names the line that is wrong.
        """
        if not body.endswith("\n"):
            raise MalformedCheckpointError("checkpoint does not end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedCheckpointError(
                f"checkpoint has {len(lines)} lines, needs origin, size and root hash"
            )
        origin, size_text, root_text, *extensions = lines
        size = parse_uint64(size_text)
        if size is None:
            raise MalformedCheckpointError(
                f"checkpoint size line {size_text[:40]!r} is not a decimal below 2**64 "
                "without leading zeros"
            )
        root = b64decode_canonical(root_text)
        if root is None:
            raise MalformedCheckpointError(
                f"checkpoint root line {root_text[:60]!r} is not canonical base64"
            )
        try:
            return cls(origin, size, root, tuple(extensions))
        except InvalidInputError as exc:
            raise MalformedCheckpointError(exc.message) from None


def open_checkpoint(note: str | bytes, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """Verify a checkpoint note with ``verifier`` and return the checkpoint it signs.

    Args:
        note: the signed note.
        verifier: the log's key, pinned by the caller.
        origin: the log the caller expects; None skips the check (the caller must then look
            at ``origin`` itself, or a checkpoint of another log signed by the same key passes).

    Raises:
        MalformedNoteError: the note is not a signed note.
        UnknownKeyError: the note is not signed by ``verifier``'s key.
        SignatureError: the signature by that key is invalid.
        MalformedCheckpointError: the signed text is not a checkpoint.
        OriginMismatchError: the checkpoint is from another log.
    """
    checkpoint = Checkpoint.parse(verifier.verify_note(note))
    if origin is not None and checkpoint.origin != origin:
        raise OriginMismatchError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}"
        )
    return checkpoint


def _problem(checkpoint: Checkpoint) -> str | None:
    """What makes ``checkpoint`` unrepresentable as a C2SP body, or None."""
    lines = {"origin": checkpoint.origin}
    lines.update({f"extension line {n}": ext for n, ext in enumerate(checkpoint.extensions)})
    for what, line in lines.items():
        if not line:
            return f"{what} is empty"
        if "\n" in line or find_forbidden_character(line) is not None:
            return f"{what} {line[:40]!r} contains a newline or a control character"
    if not 0 <= checkpoint.size <= MAX_UINT64:
        return f"size {checkpoint.size} is outside 0..2**64-1"
    if len(checkpoint.root_hash) != ROOT_HASH_SIZE:
        return f"root hash is {len(checkpoint.root_hash)} bytes, want {ROOT_HASH_SIZE}"
    return None
