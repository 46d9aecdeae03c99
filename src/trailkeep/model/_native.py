"""The package's compiled part (``_fastleaf.c``), if it was built and writes this leaf layout.

``pip install`` compiles it when a C compiler and OpenSSL's headers are present; without it
each name here is None and every caller takes its pure-Python path, which answers the same,
slower. The signatures are in ``_fastleaf.pyi``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, Final, TypeAlias

__all__ = ["commit", "leaf", "prefix"]

#: The layout version the C part must write (``commitments.LEAF_VERSION``; not imported from
#: there, which imports this module).
_LEAF_VERSION: Final = 1

Leaf: TypeAlias = Callable[..., "bytes | None"]
Commit: TypeAlias = Callable[
    [list[str], dict[str, Any], bytes], "tuple[dict[str, bytes], dict[str, bytes]] | None"
]
Prefix: TypeAlias = Callable[[dict[str, bytes], Any, Any], "bytes | None"]


def _load() -> ModuleType | None:
    try:
        from trailkeep.model import _fastleaf
    except ImportError:  # pragma: no cover - not built: the Python paths answer
        return None
    if getattr(_fastleaf, "LEAF_VERSION", None) != _LEAF_VERSION:  # pragma: no cover
        return None
    return _fastleaf


_module = _load()
#: ``_fastleaf.leaf``: a dump's event, its whole leaf checked against its stored hash.
leaf: Final[Leaf | None] = None if _module is None else _module.leaf
#: ``_fastleaf.commit``: ingest's salts and field commitments.
commit: Final[Commit | None] = None if _module is None else _module.commit
#: ``_fastleaf.prefix``: ingest's leaf input up to its ``seq``.
prefix: Final[Prefix | None] = None if _module is None else _module.prefix
