"""Exports: ``POST /v1/exports``, ``GET /v1/exports/{id}`` and ``.../download``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from trailkeep.errors import InvalidInputError
from trailkeep.model.tenant import Permission
from trailkeep.service.admin_trail import Actor
from trailkeep.service.exports import ExportJob, ExportService

from ..deps import AuthHeader, OrgHeader, ReadPrincipal, ReadTenant, ServicesDep
from ..params import KNOWN_PARAMS_ONLY, make_selection
from ..schemas import ErrorOut
from .events import json_response

__all__ = ["router"]

router = APIRouter(prefix="/v1/exports", tags=["exports"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 422)
}
_FILE = {
    "content": {
        media: {"schema": {"type": "string"}}
        for media in ("application/x-ndjson", "application/json", "text/csv")
    }
}

_Value = Annotated[str, Field(max_length=512)]
Values = _Value | Annotated[list[_Value], Field(max_length=100)] | None


def _values(alias: str) -> Any:
    return Field(default=None, alias=alias, description=f"Only events whose `{alias}` is this.")


class ExportIn(BaseModel):
    """What to export: the filters and time range of `GET /v1/events`, and a format.

    Filter names are those of the list query (`actor.id`; `actor_id` works too); each takes
    a string or a list of strings (any of them matches)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    action: Values = _values("action")
    category: Values = _values("category")
    outcome: Values = _values("outcome")
    actor_id: Values = _values("actor.id")
    actor_email: Values = _values("actor.email")
    actor_type: Values = _values("actor.type")
    target_id: Values = _values("target.id")
    target_type: Values = _values("target.type")
    source_ip: Values = _values("source.ip")
    client_id: Values = _values("client_id")
    session_id: Values = _values("session_id")
    request_id: Values = _values("request_id")
    trace_id: Values = _values("trace_id")
    q: str | None = Field(
        default=None, max_length=2000, description="Search language (docs/search.md)."
    )
    start: str | None = Field(default=None, max_length=64, description="Inclusive, any form.")
    end: str | None = Field(default=None, max_length=64, description="Exclusive, any form.")
    format: Literal["jsonl", "json", "csv", "bundle"] = Field(
        default="jsonl",
        description="`jsonl`: a header line, then each event with its salts (verifiable);"
        " `json`: one document; `csv`: one row per event; `bundle`: a verifiable bundle that"
        " also proves no matching event of its seq range was left out (docs/integrity.md).",
    )
    seq_start: int | None = Field(
        default=None, ge=0, description="`bundle` only: the first seq it covers (default 0)."
    )
    seq_end: int | None = Field(
        default=None,
        ge=0,
        description="`bundle` only: the seq it stops before (default: the log size).",
    )

    def filters(self) -> dict[str, list[str] | None]:
        out: dict[str, list[str] | None] = {}
        for name, field in type(self).model_fields.items():
            if field.alias is None or name in ("q", "start", "end", "format"):
                continue
            value = getattr(self, name)
            out[field.alias] = [value] if isinstance(value, str) else value
        return out


class ProgressOut(BaseModel):
    events_written: int = Field(description="Events the latest (or running) download wrote.")
    events_total: int | None = Field(description="Events in the export, when counted.")
    state: Literal["not_started", "running", "complete"]
    downloads: int = Field(description="Downloads started (counted by the serving process).")


class ExportOut(BaseModel):
    id: str = Field(description="Opaque; valid on every server sharing the signing key.")
    status: Literal["ready"] = Field(description="Exports are ready at once (snapshots).")
    format: str
    created_at: str
    size: int = Field(description="Log size snapshot: only events with seq < size are in it.")
    seq_range: list[int] | None = Field(
        default=None, description="A bundle's seq range [start, end); null for other formats."
    )
    events: int | None = Field(
        description="Events in the export; null until counted (GET with count=true)."
    )
    filters: dict[str, list[str]]
    start: str | None
    end: str | None
    q: str | None
    download_url: str = Field(description="Needs a reader credential.")
    download_link: str = Field(
        description="Works without a credential until download_link_expires_at (relative to"
        " the server's URL); a new one is issued on every GET."
    )
    download_link_expires_at: str
    progress: ProgressOut


def _exports(services: ServicesDep) -> ExportService:
    return services.exports


ExportsDep = Annotated[ExportService, Depends(_exports)]


def _describe(exports: ExportService, job: ExportJob, events: int | None) -> dict[str, Any]:
    link = exports.link(job)
    progress = exports.progress(job)
    return {
        "id": job.id,
        "status": "ready",
        "format": job.format,
        "created_at": job.created_at,
        "size": job.size,
        "seq_range": list(job.seq_range) if job.seq_range else None,
        "events": events,
        **job.selection.to_json(),
        "download_url": f"/v1/exports/{job.id}/download",
        "download_link": link.path,
        "download_link_expires_at": link.expires_at,
        "progress": {
            "events_written": progress.written,
            "events_total": events,
            "state": progress.state,
            "downloads": progress.downloads,
        },
    }


@router.post(
    "",
    status_code=201,
    response_model=ExportOut,
    responses=_ERRORS,
    dependencies=[KNOWN_PARAMS_ONLY],
)
def create_export(body: ExportIn, principal: ReadPrincipal, exports: ExportsDep) -> Response:
    """Snapshot a selection of events for download; ready at once, and audited."""
    assert principal.tenant_id is not None
    selection = make_selection(body.filters(), body.start, body.end, body.q)
    job = exports.create(
        principal.tenant_id,
        selection,
        body.format,
        Actor.of(principal),
        (body.seq_start, body.seq_end),
    )
    return json_response(_describe(exports, job, exports.count(job, compute=False)), 201)


@router.get(
    "/{export_id}", response_model=ExportOut, responses=_ERRORS, dependencies=[KNOWN_PARAMS_ONLY]
)
def get_export(
    export_id: str,
    tenant: ReadTenant,
    exports: ExportsDep,
    count: Annotated[
        bool, Query(description="Count the events (one walk of the snapshot) if not known.")
    ] = False,
) -> Response:
    """An export's status (always `ready`) and, when known or asked for, its event count."""
    job = exports.get(tenant, export_id)
    return json_response(_describe(exports, job, exports.count(job, compute=count)))


@router.get(
    "/{export_id}/download",
    response_class=StreamingResponse,
    responses={**_ERRORS, 200: _FILE},
    dependencies=[KNOWN_PARAMS_ONLY],
)
def download_export(
    export_id: str,
    services: ServicesDep,
    authorization: AuthHeader,
    org: OrgHeader = None,
    expires: Annotated[
        int | None, Query(description="From the download link (with `sig`).")
    ] = None,
    sig: Annotated[
        str | None, Query(max_length=64, description="From the download link: no token needed.")
    ] = None,
) -> Response:
    """The export's file, streamed from the store as it is read: with a reader credential,
    or through the export's download link (`expires` and `sig`) without one."""
    exports = services.exports
    if expires is not None or sig is not None:
        if expires is None or sig is None:
            raise InvalidInputError("a download link needs both expires and sig")
        job = exports.open_link(export_id, expires, sig)
    else:
        principal = services.auth.authenticate(authorization, org, Permission.READ)
        if principal.tenant_id is None:
            raise InvalidInputError("operator keys must name a tenant with the X-Org-ID header")
        job = exports.get(principal.tenant_id, export_id)
    headers = {
        "Content-Disposition": f'attachment; filename="{job.filename}"',
        "X-Export-Size": str(job.size),
    }
    return StreamingResponse(exports.lines(job), media_type=job.media_type, headers=headers)
