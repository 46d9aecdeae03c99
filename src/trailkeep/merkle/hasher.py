"""The hash functions that define a tree's leaves, interior nodes and empty root.

Everything else in the package takes a ``LogHasher`` as a parameter, as transparency-dev/merkle
does, so one per-tenant sequence of events can carry two trees: the RFC 9162 tree that our
checkpoints sign (``shared/DESIGN.md`` §3), and the legacy tree Pangea's SDK verifies.

Both hashers call ``hashlib.sha256`` directly on one concatenated buffer: that is the fastest
form in CPython and the interior-node hash is on the ingest hot path.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Final, Protocol, runtime_checkable

__all__ = [
    "PANGEA_LEGACY",
    "RFC9162",
    "LogHasher",
    "PangeaLegacyHasher",
    "Rfc9162Hasher",
]

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"
_EMPTY_SHA256: Final = sha256(b"").digest()


@runtime_checkable
class LogHasher(Protocol):
    """The three hash functions of a Merkle tree log, and the length of their output."""

    @property
    def size(self) -> int:
        """The length in bytes of every hash this hasher returns."""
        ...

    def empty_root(self) -> bytes:
        """The root of the tree with no leaves."""
        ...

    def hash_leaf(self, data: bytes) -> bytes:
        """The hash of a leaf whose input bytes are ``data``."""
        ...

    def hash_children(self, left: bytes, right: bytes) -> bytes:
        """The hash of an interior node from the hashes of its two children."""
        ...


class Rfc9162Hasher:
    """RFC 9162 §2.1.1 (and RFC 6962) with SHA-256: the hasher of every trailkeep checkpoint.

    The one-byte prefixes (0x00 for leaves, 0x01 for nodes) keep a leaf from ever being passed
    off as an interior node (second-preimage resistance), which is why the legacy hasher below is
    only kept for compatibility.
    """

    __slots__ = ()

    @property
    def size(self) -> int:
        """SHA-256 output length: 32."""
        return 32

    def empty_root(self) -> bytes:
        """``SHA-256()``, the hash of the empty string, as RFC 9162 defines for ``MTH({})``."""
        return _EMPTY_SHA256

    def hash_leaf(self, data: bytes) -> bytes:
        """``SHA-256(0x00 ‖ data)``."""
        return sha256(_LEAF_PREFIX + data).digest()

    def hash_children(self, left: bytes, right: bytes) -> bytes:
        """``SHA-256(0x01 ‖ left ‖ right)``."""
        return sha256(_NODE_PREFIX + left + right).digest()

    def __repr__(self) -> str:
        return "RFC9162"


class PangeaLegacyHasher:
    """Pangea's tree: no domain prefixes, same left-balanced shape (``shared/compat/pangea.md``).

    The leaf is ``SHA-256`` of the event envelope's canonical JSON, i.e. the event ``hash`` the
    Pangea SDK checks, and a node is ``SHA-256(left ‖ right)``. The SDK never asks for the root
    of an empty tree; we define it as ``SHA-256()`` like RFC 9162 so the hasher stays total.
    """

    __slots__ = ()

    @property
    def size(self) -> int:
        """SHA-256 output length: 32."""
        return 32

    def empty_root(self) -> bytes:
        """``SHA-256()``, by analogy with RFC 9162; Pangea publishes no root for size 0."""
        return _EMPTY_SHA256

    def hash_leaf(self, data: bytes) -> bytes:
        """``SHA-256(data)``."""
        return sha256(data).digest()

    def hash_children(self, left: bytes, right: bytes) -> bytes:
        """``SHA-256(left ‖ right)``."""
        return sha256(left + right).digest()

    def __repr__(self) -> str:
        return "PANGEA_LEGACY"


RFC9162: Final = Rfc9162Hasher()
"""The hasher of trailkeep's own tree, checkpoints and proofs."""

PANGEA_LEGACY: Final = PangeaLegacyHasher()
"""The hasher of the second tree the Pangea dialect serves to Pangea's SDK."""
