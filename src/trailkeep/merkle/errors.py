"""The errors the merkle package raises when a proof, a note or a key does not verify or parse.

Every failure of verification derives from ``trailkeep.errors.IntegrityError`` so that a caller
may catch either the precise type or the project-wide one; a key string that does not parse is
configuration the caller can fix, so it is an ``InvalidInputError``::

    TrailkeepError
    ├── InvalidInputError
    │   └── InvalidKeyError             a signer or verifier key string that does not parse
    └── IntegrityError
        ├── ProofError                  a Merkle proof that does not verify
        │   ├── InvalidProofError       wrong shape for the claimed index and sizes
        │   └── RootMismatchError       well-formed, but hashes to another root
        └── NoteError                   a signed note, checkpoint or receipt that does not verify
            ├── MalformedNoteError      not the C2SP signed-note syntax
            │   ├── MalformedCheckpointError   body is not a c2sp.org/tlog-checkpoint
            │   └── MalformedTlogProofError    not a c2sp.org/tlog-proof
            ├── UnknownKeyError         no signature by the key we trust
            ├── SignatureError          a signature by the trusted key that fails
            └── OriginMismatchError     a checkpoint from another log

Messages name the value that is wrong, so a log line is enough to tell what happened.
"""

from __future__ import annotations

from trailkeep.errors import IntegrityError, InvalidInputError

__all__ = [
    "InvalidKeyError",
    "InvalidProofError",
    "MalformedCheckpointError",
    "MalformedNoteError",
    "MalformedTlogProofError",
    "NoteError",
    "OriginMismatchError",
    "ProofError",
    "RootMismatchError",
    "SignatureError",
    "UnknownKeyError",
]


class InvalidKeyError(InvalidInputError):
    """A note signer or verifier key string that is not ``<name>+<hex8>+<base64>``."""

    code = "INVALID_KEY"


class ProofError(IntegrityError):
    """A Merkle inclusion or consistency proof that does not verify."""

    code = "INVALID_PROOF"


class InvalidProofError(ProofError):
    """The proof cannot be right for the claimed index and sizes, whatever its hashes.

    Raised before any hashing: a precondition such as ``index < size`` does not hold, the proof
    has the wrong number of elements, or a hash has the wrong length.
    """


class RootMismatchError(ProofError):
    """The proof is well-formed but hashes to a root other than the one we hold.

    Attributes:
        expected: the root the caller trusts (from a checkpoint).
        calculated: the root the proof leads to.
        tree_size: the size of the tree whose root did not match, when known.
    """

    def __init__(self, expected: bytes, calculated: bytes, tree_size: int | None = None) -> None:
        where = "" if tree_size is None else f" of the tree of size {tree_size}"
        super().__init__(
            f"calculated root{where} {calculated.hex()} does not match expected root "
            f"{expected.hex()}"
        )
        self.expected = expected
        self.calculated = calculated
        self.tree_size = tree_size


class NoteError(IntegrityError):
    """A signed note, checkpoint or tlog-proof receipt that does not verify."""

    code = "INVALID_NOTE"


class MalformedNoteError(NoteError):
    """Text that does not follow the C2SP signed-note syntax (c2sp.org/signed-note)."""


class MalformedCheckpointError(MalformedNoteError):
    """A note body that is not a C2SP checkpoint (c2sp.org/tlog-checkpoint)."""


class MalformedTlogProofError(MalformedNoteError):
    """Text that is not a C2SP transparency-log proof (c2sp.org/tlog-proof)."""


class UnknownKeyError(NoteError):
    """The note carries no signature by the key we verify with.

    Signatures by other keys are ignored, as the signed-note spec requires, so a note signed
    only by strangers is rejected with this error rather than a ``SignatureError``.
    """


class SignatureError(NoteError):
    """A signature line by the trusted key (same name and key id) fails to verify."""


class OriginMismatchError(NoteError):
    """A valid checkpoint whose origin is not the log the caller asked about."""
