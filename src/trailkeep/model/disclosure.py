"""A bundle's filter: conditions on committed field values, decided from what is disclosed.

A verifiable bundle (``trailkeep-bundle/v1``, docs/integrity.md) proves that it holds every
event of a seq range that matches its filter. For that the filter must be decidable from the
committed fields of a leaf alone: each condition (a :class:`Clause`) names one committed field
path (DESIGN §3), and the conditions are ANDed. The builder and the verifier share this one
definition, so what a bundle claims to match is what its verifier checks.

A leaf can be judged three ways (:meth:`BundleFilter.verdict`): it matches (every clause's
value is known and passes), it does not (one clause fails on a disclosed value, or on a field
the leaf's commitments show is absent), or it cannot be told (the value a clause needs is
erased, or was not disclosed).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from trailkeep.model.commitments import COMMITTED_OBJECTS, POSITIONAL_FIELDS

__all__ = ["ABSENT", "BUNDLE_FORMAT", "BundleFilter", "Clause", "CompareOp", "path_value"]

#: The ``format`` of a bundle's header line.
BUNDLE_FORMAT: Final = "trailkeep-bundle/v1"

CompareOp: TypeAlias = Literal[">", ">=", "<", "<="]
_COMPARE: Final[Mapping[str, Callable[[str, str], bool]]] = {
    ">": str.__gt__,
    ">=": str.__ge__,
    "<": str.__lt__,
    "<=": str.__le__,
}
#: What :func:`path_value` answers for a field the event does not have (none is committed).
ABSENT: Final[Any] = object()


@dataclass(frozen=True, slots=True)
class Clause:
    """One condition on one committed field path; only string values ever pass.

    Attributes:
        path: the committed field path (``action``, ``actor.id``, ``timestamp``).
        values: the value must equal one of these (``in``); None for a comparison.
        op: a comparison of the value with ``bound`` in code-point order (the fixed-width
            timestamps order as time), or None for ``in``.
        bound: the comparison's other side.
    """

    path: str
    values: tuple[str, ...] | None = None
    op: CompareOp | None = None
    bound: str | None = None

    def passes(self, value: Any) -> bool:
        """Whether a present value passes: a string equal to one of ``values``, or in order."""
        if type(value) is not str:
            return False
        if self.values is not None:
            return value in self.values
        if self.op is None or self.bound is None:
            raise TypeError("a clause is either 'in' or a comparison")
        return _COMPARE[self.op](value, self.bound)

    def to_json(self) -> dict[str, Any]:
        if self.values is not None:
            return {"path": self.path, "in": list(self.values)}
        return {"path": self.path, "op": self.op, "value": self.bound}

    @classmethod
    def from_json(cls, data: Any) -> Clause:
        """A clause from its JSON form; ``ValueError`` naming what is wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            raise ValueError(f"a clause is an object with a string 'path', not {data!r}")
        path = data["path"]
        name = path.partition(".")[0]
        if path in POSITIONAL_FIELDS or ("." in path and name not in COMMITTED_OBJECTS):
            raise ValueError(f"{path!r} is no committed field path")
        if set(data) == {"path", "in"}:
            values = data["in"]
            if not isinstance(values, list) or not all(type(v) is str for v in values):
                raise ValueError(f"clause on {path!r}: 'in' must be a list of strings")
            return cls(path, values=tuple(values))
        if set(data) == {"path", "op", "value"}:
            op, bound = data["op"], data["value"]
            if op not in _COMPARE or type(bound) is not str:
                raise ValueError(f"clause on {path!r}: bad comparison {op!r} {bound!r}")
            return cls(path, op=op, bound=bound)
        raise ValueError(f"clause on {path!r} has keys {sorted(data)}")

    def describe(self) -> str:
        """The clause as a person reads it: ``action in [a, b]``, ``timestamp >= T``."""
        if self.values is not None:
            return f"{self.path} in [{', '.join(self.values)}]"
        return f"{self.path} {self.op} {self.bound}"


@dataclass(frozen=True, slots=True)
class BundleFilter:
    """Clauses that must all pass; no clauses select every event."""

    clauses: tuple[Clause, ...] = ()

    def to_json(self) -> list[dict[str, Any]]:
        return [clause.to_json() for clause in self.clauses]

    @classmethod
    def from_json(cls, data: Any) -> BundleFilter:
        """A filter from its JSON form (a list of clauses); ``ValueError`` if malformed."""
        if not isinstance(data, list):
            raise ValueError("the filter is a list of clauses")
        return cls(tuple(Clause.from_json(item) for item in data))

    def describe(self) -> str:
        return " AND ".join(c.describe() for c in self.clauses) or "everything"

    def verdict(self, known: Mapping[str, Any], committed: Collection[str]) -> bool | None:
        """Whether a leaf matches: True, False, or None when that cannot be told.

        Args:
            known: the values that are known (disclosed, or salted in an included event).
            committed: every field path the leaf commits to; a clause's path outside it is
                absent from the event, and an absent field never matches.
        """
        result: bool | None = True
        for clause in self.clauses:
            if clause.path not in committed:
                return False
            if clause.path not in known:
                result = None
            elif not clause.passes(known[clause.path]):
                return False
        return result

    def witness(self, values: Mapping[str, Any], salted: Collection[str]) -> list[str] | None:
        """The field paths whose disclosure shows that an event does not match.

        The builder's side of :meth:`verdict`: ``[]`` when a clause's field is absent (the
        commitments show it), one path when a clause fails on a value that can be disclosed,
        None when no such proof exists (the event matches, or only erased values could
        tell).

        Args:
            values: the event's field paths (``field_paths``), erased ones included.
            salted: the paths whose value and salt can be disclosed (not erased).
        """
        for clause in self.clauses:
            if clause.path not in values:
                return []
            if clause.path in salted and not clause.passes(values[clause.path]):
                return [clause.path]
        return None

    def erased(self, salted: Collection[str], values: Collection[str]) -> list[str]:
        """The clause paths an event holds but cannot disclose (erased values)."""
        return [c.path for c in self.clauses if c.path in values and c.path not in salted]


def path_value(event: Mapping[str, Any], path: str) -> Any:
    """The value of a committed field path in an event's wire form, or :data:`ABSENT`.

    Mirrors ``field_paths``: a null value is absent, and ``actor.id`` exists only where
    ``actor`` is an object.
    """
    name, dot, key = path.partition(".")
    value = event.get(name)
    if dot:
        value = value.get(key) if type(value) is dict else None
    elif type(value) is dict and name in COMMITTED_OBJECTS:
        return ABSENT  # committed key by key, never as a whole
    return ABSENT if value is None else value
