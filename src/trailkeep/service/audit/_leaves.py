"""Stored rows' leaf hashes, recomputed from their content and packed salts, fast.

The exact path (``model.evidence.event_leaf_hash``) flattens the content, decodes every salt and
hashes field by field. A log's rows come in few *shapes* (top-level keys, and the keys of each
committed object), so for each shape this compiles once a function that reads the field values
in leaf order, and hands them with the row's packed salts to the C part (``_fastleaf.leaf``),
which writes the whole leaf and compares it with the stored hash in one call. It only ever
vouches for a row whose recomputed leaf *is* its stored hash; anything else (a redacted or null
field, a float, no C part, a mismatch) returns False and the caller asks the exact path, which
gives the answer or names the field at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeAlias

import orjson

from trailkeep.model import _native
from trailkeep.model.commitments import COMMITTED_OBJECTS, POSITIONAL_FIELDS

__all__ = ["RowLeaves"]

_Values: TypeAlias = Callable[[dict[str, Any]], tuple[Any, ...]]
_Plan: TypeAlias = "tuple[tuple[str, ...], _Values] | None"
_MAX_PLANS: Final = 1024
#: Source of a shape's value reader; names are numbers, keys come from the namespace (data).
_SOURCE: Final = "def values(c):\n{objects}    return ({items},)\n"


def _shape(content: dict[str, Any]) -> tuple[Any, ...]:
    get = content.get
    return (tuple(content), *[tuple(v) if type(v) is dict else None for v in map(get, _OBJS)])


_OBJS: Final = COMMITTED_OBJECTS


def _compile(shape: tuple[Any, ...]) -> _Plan:
    """The JCS keys and value reader of the rows of ``shape``; None if only the exact path may
    judge them (a server field or a dotted name in the content, an astral key)."""
    top, objects = shape[0], dict(zip(_OBJS, shape[1:], strict=True))
    paths: list[tuple[str, int | None, str]] = []  # (path, object number, key)
    names: dict[str, int] = {}
    for name in top:
        if type(name) is not str or "." in name or name in POSITIONAL_FIELDS:
            return None
        members = objects.get(name)
        if members is None:
            paths.append((name, None, name))
            continue
        names[name] = len(names)
        for key in members:
            if type(key) is not str:
                return None
            paths.append((f"{name}.{key}", names[name], key))
    ordered = sorted(paths)
    if [p for p, _, _ in ordered] != sorted(
        (p for p, _, _ in ordered), key=lambda p: p.encode("utf-16-be", "surrogatepass")
    ):
        return None  # JCS order (UTF-16) differs from the packed order (code points)
    try:
        keys = tuple(orjson.dumps(p).decode() for p, _, _ in ordered)
    except orjson.JSONEncodeError:
        return None
    namespace: dict[str, Any] = {}
    for j, name in enumerate(names):
        namespace[f"N{j}"] = name
    items = []
    for n, (_, obj, key) in enumerate(ordered):
        namespace[f"K{n}"] = key
        items.append(f"c[K{n}]" if obj is None else f"o{obj}[K{n}]")
    source = _SOURCE.format(
        objects="".join(f"    o{j} = c[N{j}]\n" for j in range(len(names))),
        items=", ".join(items),
    )
    exec(compile(source, f"<row shape of {len(keys)} fields>", "exec"), namespace)  # noqa: S102
    reader: _Values = namespace["values"]
    return keys, reader


class RowLeaves:
    """Checks stored rows of one tenant against their stored leaf hash, in the common case.

    Not thread-safe; one per audit.
    """

    __slots__ = ("_leaf", "_plans", "_tenant_json")

    def __init__(self, tenant_id: str) -> None:
        self._leaf = _native.leaf
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        self._tenant_json = orjson.dumps(tenant_id).decode()

    def matches(
        self,
        content: dict[str, Any],
        salts: bytes | None,
        seq: int,
        event_id: str,
        received_at: str,
        leaf_hash: bytes | None,
    ) -> bool:
        """True only if the row's recomputed leaf is ``leaf_hash``; False means "ask the exact
        path" (which then says whether, and why, it differs)."""
        leaf = self._leaf
        if leaf is None or type(salts) is not bytes or type(leaf_hash) is not bytes:
            return False
        shape = _shape(content)
        try:
            plan = self._plans[shape]
        except KeyError:
            if len(self._plans) >= _MAX_PLANS:
                return False
            plan = self._plans[shape] = _compile(shape)
        if plan is None:
            return False
        keys, values = plan
        return (
            leaf(keys, salts, values(content), event_id, received_at, seq, self._tenant_json,
                 leaf_hash)
            is not None
        )  # fmt: skip
