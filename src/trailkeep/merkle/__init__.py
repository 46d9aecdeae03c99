"""Pure Merkle-tree log primitives: hashers, compact ranges, proofs, checkpoints, receipts.

No I/O and no storage: functions over ints and bytes, modelled on transparency-dev/merkle and
the C2SP specifications, that the service layer combines with a store. The modules, bottom up:

- ``hasher``: ``LogHasher`` and the two trees we keep, ``RFC9162`` and ``PANGEA_LEGACY``.
- ``nodes``: ``NodeID`` of a complete subtree, and range decomposition.
- ``compact``: ``CompactRange``, the appending frontier that reports every completed node.
- ``proof``: which stored nodes make up an inclusion or consistency proof.
- ``verify``: RFC 9162 proof verification that raises typed errors.
- ``note``, ``keys``: C2SP signed notes, and the Ed25519 keys that sign and verify them.
- ``checkpoint``, ``tlogproof``: C2SP checkpoints and tlog-proof receipts.
- ``errors``: the verification errors, all ``IntegrityError``s.
"""

from __future__ import annotations

from trailkeep.merkle.checkpoint import Checkpoint, open_checkpoint
from trailkeep.merkle.compact import CompactRange, NodeRow, root_from_subtrees
from trailkeep.merkle.errors import (
    InvalidKeyError,
    InvalidProofError,
    MalformedCheckpointError,
    MalformedNoteError,
    MalformedTlogProofError,
    NoteError,
    OriginMismatchError,
    ProofError,
    RootMismatchError,
    SignatureError,
    UnknownKeyError,
)
from trailkeep.merkle.hasher import (
    PANGEA_LEGACY,
    RFC9162,
    LogHasher,
    PangeaLegacyHasher,
    Rfc9162Hasher,
)
from trailkeep.merkle.keys import Signer, Verifier, ed25519_key_id
from trailkeep.merkle.nodes import NodeID, range_nodes, subtree_ids
from trailkeep.merkle.note import NoteSignature, SignedNote, parse_note
from trailkeep.merkle.proof import Nodes, consistency, inclusion
from trailkeep.merkle.tlogproof import (
    TlogProof,
    format_tlog_proof,
    parse_tlog_proof,
    verify_tlog_proof,
)
from trailkeep.merkle.verify import (
    inclusion_proof_length,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "PANGEA_LEGACY",
    "RFC9162",
    "Checkpoint",
    "CompactRange",
    "InvalidKeyError",
    "InvalidProofError",
    "LogHasher",
    "MalformedCheckpointError",
    "MalformedNoteError",
    "MalformedTlogProofError",
    "NodeID",
    "NodeRow",
    "Nodes",
    "NoteError",
    "NoteSignature",
    "OriginMismatchError",
    "PangeaLegacyHasher",
    "ProofError",
    "Rfc9162Hasher",
    "RootMismatchError",
    "SignatureError",
    "SignedNote",
    "Signer",
    "TlogProof",
    "UnknownKeyError",
    "Verifier",
    "consistency",
    "ed25519_key_id",
    "format_tlog_proof",
    "inclusion",
    "inclusion_proof_length",
    "open_checkpoint",
    "parse_note",
    "parse_tlog_proof",
    "range_nodes",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "root_from_subtrees",
    "subtree_ids",
    "verify_consistency",
    "verify_inclusion",
    "verify_tlog_proof",
]
