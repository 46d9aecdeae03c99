"""Relative times in a tree made absolute, so every page of one walk reads the same instants."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from trailkeep.errors import TimeParseError
from trailkeep.query.ast import And, Node, Not, Or, Term
from trailkeep.query.errors import QuerySyntaxError
from trailkeep.query.fields import FieldError, FieldKind, resolve
from trailkeep.query.values import as_time

__all__ = ["fix_times"]


def fix_times(node: Node, now: datetime) -> Node:
    """``node`` with each time term's value (``timestamp>now-1h``) read against ``now``.

    Raises:
        QuerySyntaxError: a time term's value is not a time.
    """
    if isinstance(node, Term):
        return _term(node, now)
    if isinstance(node, Not):
        return Not(fix_times(node.child, now))
    if isinstance(node, And | Or):
        return type(node)(tuple(fix_times(child, now) for child in node.children))
    return node


def _term(term: Term, now: datetime) -> Term:
    if term.field is None or term.prefix:
        return term
    try:
        kind = resolve(term.field).kind
    except FieldError:
        return term  # the compiler reports it, at its position
    if kind is not FieldKind.TIME:
        return term
    try:
        instant = as_time(term.value, param=".".join(term.field), now=now)
    except TimeParseError as exc:
        raise QuerySyntaxError(term.position, exc.message) from None
    return term if instant is None else replace(term, value=instant)
