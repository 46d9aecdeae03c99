"""The package's compiled part (``_fastleaf.c``), if it was built and writes this leaf layout.

``pip install`` compiles it when a C compiler and the headers of OpenSSL and SQLite are present;
without it each name here is None and every caller takes its pure-Python path, which answers
the same, slower. The signatures are in ``_fastleaf.pyi``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, Final, TypeAlias

__all__ = [
    "SQLiteError",
    "SQLiteRows",
    "Tally",
    "check_rows",
    "climb",
    "commit",
    "leaf",
    "parents",
    "prefix",
]

#: The layout version the C part must write (``commitments.LEAF_VERSION``; not imported from
#: there, which imports this module).
_LEAF_VERSION: Final = 1

Leaf: TypeAlias = Callable[..., "bytes | None"]
Commit: TypeAlias = Callable[
    [list[str], dict[str, Any], bytes], "tuple[dict[str, bytes], dict[str, bytes]] | None"
]
Prefix: TypeAlias = Callable[[dict[str, bytes], Any, Any], "bytes | None"]
#: rows, start, end, tenant_json, loads, watch, tally -> (leaves, counted, rest, watched, vouched)
CheckRows: TypeAlias = Callable[
    [list[tuple[Any, ...]], int, int, str, Callable[[Any], Any], frozenset[int], Any],
    "tuple[list[bytes | None], list[tuple[str | None, ...]], list[tuple[Any, ...]], list[tuple[int, str]], int]",  # noqa: E501
]
Parents: TypeAlias = Callable[[list[bytes]], list[bytes]]
Climb: TypeAlias = Callable[[bytes, bool], list[bytes]]


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
#: ``_fastleaf.check_rows``: the auditor's check of stored rows, vouching for the common case.
check_rows: Final[CheckRows | None] = None if _module is None else _module.check_rows
#: ``_fastleaf.parents``: one level of RFC 9162 interior nodes.
parents: Final[Parents | None] = None if _module is None else _module.parents
#: ``_fastleaf.climb``: every level of a subtree over 2**k leaves (RFC 9162's or Pangea's).
climb: Final[Climb | None] = None if _module is None else _module.climb
#: ``_fastleaf.SQLiteRows``: ``check_rows`` over a SQLite statement stepped in C.
SQLiteRows: Final[Any] = None if _module is None else _module.SQLiteRows
#: ``_fastleaf.Tally``: the rollup recount (``service.audit._rollups.RollupTally``) in C.
Tally: Final[Any] = None if _module is None else _module.Tally


class _NeverRaised(Exception):
    """Stands for ``SQLiteError`` when the C part is not built (nothing raises it then)."""


#: ``_fastleaf.SQLiteError``: a SQLite error met by ``SQLiteRows``.
SQLiteError: Final[type[Exception]] = _NeverRaised if _module is None else _module.SQLiteError

#: Whether ``SQLiteRows`` gives its connection the aggregates ``trailkeep_rows``,
#: ``trailkeep_hashes`` and ``trailkeep_rollups`` (a part compiled before them does not: its
#: queries are the stepped ones).
AUDIT_AGGREGATES: Final[bool] = _module is not None and getattr(_module, "AUDIT_AGGREGATES", 0) == 1

#: ``_fastleaf.bundle_events``: a bundle's common event lines, parsed and checked a batch per call.
bundle_events: Final[
    Callable[[list[bytes], int, str, str, Callable[[Any], Any]], list[bytes | None]] | None
] = None if _module is None else getattr(_module, "bundle_events", None)
#: ``_fastleaf.bundle_chunk``: ``bundle_events`` over one read's whole lines, no object per line.
bundle_chunk: Final[
    Callable[
        [bytes | memoryview, int, int, str, str, Callable[[Any], Any]],
        tuple[list[bytes], list[int]] | None,
    ]
    | None
] = None if _module is None else getattr(_module, "bundle_chunk", None)
