"""The package's compiled part (``_fastleaf.c``), if it was built and writes this leaf layout.

``pip install`` compiles it when a C compiler and OpenSSL's headers are present; without it
every caller takes its pure-Python path, which answers the same, slower.
"""

from __future__ import annotations

from types import ModuleType
from typing import Final

__all__ = ["fastleaf"]

#: The layout version the C part must write (``commitments.LEAF_VERSION``; not imported from
#: there, which imports this module).
_LEAF_VERSION: Final = 1


def _load() -> ModuleType | None:
    try:
        from trailkeep.model import _fastleaf
    except ImportError:  # pragma: no cover - not built: the Python paths answer
        return None
    if getattr(_fastleaf, "LEAF_VERSION", None) != _LEAF_VERSION:  # pragma: no cover
        return None
    return _fastleaf


#: ``trailkeep.model._fastleaf``, or None.
fastleaf: Final = _load()
