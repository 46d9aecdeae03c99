"""Query parameters shared by every route that reads many events: the filters and the time
range of ``GET /v1/events``, ``GET /v1/stream`` and (as a JSON body) ``POST /v1/exports``; and
the refusal of parameters a native read route does not know."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from trailkeep.errors import InvalidInputError
from trailkeep.model.timeparse import format_time, parse_time
from trailkeep.query.filters import FILTER_COLUMNS
from trailkeep.service.selection import Selection

__all__ = [
    "KNOWN_PARAMS_ONLY",
    "SelectionDep",
    "make_selection",
    "normalize_time",
    "reject_unknown_params",
    "with_query",
]


def _filter_param(name: str) -> Any:
    return Query(
        alias=name, max_length=512, description=f"Only events whose `{name}` is one of these."
    )


def normalize_time(value: str | None, param: str) -> str | None:
    """A time in any accepted form (DESIGN §6) → the fixed-width form; 400 naming ``param``."""
    if value is None:
        return None
    parsed = parse_time(value, param=param)
    return None if parsed is None else format_time(parsed)


def make_selection(
    filters: Mapping[str, Sequence[str] | None],
    start: str | None,
    end: str | None,
    q: str | None = None,
) -> Selection:
    """A selection from raw filter values (empty ones dropped), raw times and a query (a
    blank one is none)."""
    kept = {name: list(v) for name, v in filters.items() if v}
    selection = Selection(kept, normalize_time(start, "start"), normalize_time(end, "end"))
    return with_query(selection, q)


def with_query(selection: Selection, q: str | None) -> Selection:
    """The selection narrowed by a search-language query (a blank one is none)."""
    return dataclasses.replace(selection, q=q if q is not None and q.strip() else None)


def _selection(
    action: Annotated[list[str] | None, _filter_param("action")] = None,
    category: Annotated[list[str] | None, _filter_param("category")] = None,
    outcome: Annotated[list[str] | None, _filter_param("outcome")] = None,
    actor_id: Annotated[list[str] | None, _filter_param("actor.id")] = None,
    actor_email: Annotated[list[str] | None, _filter_param("actor.email")] = None,
    actor_type: Annotated[list[str] | None, _filter_param("actor.type")] = None,
    target_id: Annotated[list[str] | None, _filter_param("target.id")] = None,
    target_type: Annotated[list[str] | None, _filter_param("target.type")] = None,
    source_ip: Annotated[list[str] | None, _filter_param("source.ip")] = None,
    client_id: Annotated[list[str] | None, _filter_param("client_id")] = None,
    session_id: Annotated[list[str] | None, _filter_param("session_id")] = None,
    request_id: Annotated[list[str] | None, _filter_param("request_id")] = None,
    trace_id: Annotated[list[str] | None, _filter_param("trace_id")] = None,
    start: Annotated[
        str | None,
        Query(max_length=64, description="Inclusive lower bound on timestamp (DESIGN §6 forms)."),
    ] = None,
    end: Annotated[
        str | None, Query(max_length=64, description="Exclusive upper bound on timestamp.")
    ] = None,
) -> Selection:
    values = (
        action,
        category,
        outcome,
        actor_id,
        actor_email,
        actor_type,
        target_id,
        target_type,
        source_ip,
        client_id,
        session_id,
        request_id,
        trace_id,
    )
    return make_selection(dict(zip(FILTER_COLUMNS, values, strict=True)), start, end)


#: The filters and time range of a request that reads many events.
SelectionDep = Annotated[Selection, Depends(_selection)]


_ACCEPTED: dict[int, tuple[str, ...]] = {}


def _query_names(dependant: Dependant) -> list[str]:
    names = [param.alias for param in dependant.query_params]
    for sub in dependant.dependencies:
        names.extend(_query_names(sub))
    return names


def _accepted(route: APIRoute) -> tuple[str, ...]:
    """The query parameter names a route declares (its own and its dependencies')."""
    key = id(route)
    if key not in _ACCEPTED:
        _ACCEPTED[key] = tuple(sorted(set(_query_names(route.dependant))))
    return _ACCEPTED[key]


def reject_unknown_params(request: Request) -> None:
    """Refuse a query parameter the route does not know, rather than ignore it.

    A misspelled filter (``?acton=login``, ``?actor_id=u1``) would otherwise be dropped and
    the request answered with every event, which reads as "these are the matches".

    Raises:
        InvalidInputError: naming the first unknown parameter and listing the accepted ones.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    accepted = _accepted(route)
    for name in request.query_params:
        if name not in accepted:
            close = difflib.get_close_matches(name.replace("_", "."), accepted, n=1)
            close = close or difflib.get_close_matches(name, accepted, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise InvalidInputError(
                f"unknown query parameter '{name[:64]}'{hint}; accepted: {', '.join(accepted)}"
            )


#: Add to a read route's ``dependencies``: unknown query parameters are a 400.
KNOWN_PARAMS_ONLY = Depends(reject_unknown_params)
