"""Server settings: one validated object, from flags or ``TRAILKEEP_*`` environment variables."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEPRECATED_VARIABLES", "Settings", "unknown_variables"]

#: Variables still read under an old name, and the name to use instead.
DEPRECATED_VARIABLES = {"TRAILKEEP_WORKERS_LOG_LEVEL": "TRAILKEEP_LOG_LEVEL"}


class Settings(BaseSettings):
    """Every setting of a trailkeep server (documented in ``docs/configuration.md``)."""

    model_config = SettingsConfigDict(env_prefix="TRAILKEEP_", extra="forbid")

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on.")
    database: str = Field(
        "sqlite:///./trailkeep.db",
        description="sqlite:///PATH (default) or postgresql://USER@HOST/DB.",
    )
    signing_key: Path = Field(
        Path("./trailkeep-signing.key"),
        description="Ed25519 checkpoint signing key file; created with mode 0600 if missing.",
    )
    signer_state: Path | None = Field(
        None,
        description="File where the signer remembers the last checkpoint it signed per tenant"
        " (default: <signing_key>.state beside the key); must be writable and persistent.",
    )
    server_name: str = Field(
        "trailkeep.local",
        description="Origin prefix of checkpoints (<server_name>/<tenant>) and key name.",
    )
    checkpoint_interval: float = Field(
        1.0, gt=0, description="Seconds between checkpoints of a growing tenant log."
    )
    pangea_published_roots: bool = Field(
        False,
        description="Pangea dialect: search answers events covered by the latest signed"
        " checkpoint as published, against the root at that size (the SDK then looks roots"
        " up on Arweave before /v1/root).",
    )
    stream_poll_interval: float = Field(
        0.1,
        gt=0,
        description="Seconds between a live stream's reads when no write of this process woke"
        " it (finds events written by other processes).",
    )
    stream_heartbeat: float = Field(
        15.0, gt=0, description="Seconds of silence after which a live stream sends a keepalive."
    )
    stream_checkpoint_interval: float = Field(
        5.0, gt=0, description="Seconds between a live stream's looks for a newer checkpoint."
    )
    max_event_bytes: int = Field(64 * 1024, gt=0, description="Largest accepted event (JSON).")
    max_batch_events: int = Field(1000, gt=0, description="Most events in one batch request.")
    max_batch_bytes: int = Field(8 * 1024 * 1024, gt=0, description="Largest request body.")
    rate_limit_per_second: float = Field(
        0.0,
        ge=0,
        description="Requests per second each client id (or, without a credential, each IP)"
        " may sustain; over it, 429 with Retry-After. 0 turns rate limiting off.",
    )
    rate_limit_burst: int = Field(
        0,
        ge=0,
        description="Requests a client may make at once after being idle (0: one second's"
        " worth of rate_limit_per_second).",
    )
    max_future_skew: float = Field(
        24 * 3600.0,
        ge=0,
        description="Seconds an event's timestamp may lie ahead of the server's clock; later"
        " ones get 422. Past timestamps are always accepted.",
    )
    shutdown_grace: float = Field(
        5.0,
        gt=0,
        description="Seconds a stopping server (SIGTERM) gives open requests to finish; live"
        " streams end at once with an event telling clients to reconnect.",
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL",
        description="FULL fsyncs every group commit (survives power loss); NORMAL survives"
        " a killed process only.",
    )
    query_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds one event read (list, search, count, facets, a dialect's page)"
        " may run before it stops with 503 QUERY_TIMEOUT.",
    )
    prepare_workers: int = Field(
        0,
        ge=0,
        le=64,
        description="Worker processes that prepare ingest batches of 32 or more events"
        " (normalization, salts, commitments, leaf inputs) beside the server's process;"
        " 0 prepares them in-process.",
    )
    max_heavy_reads: int = Field(
        2,
        ge=1,
        description="Most heavy reads (searches, counts, facets, deep offsets) running at once;"
        " more wait their turn, so cheap reads never queue behind them.",
    )
    prune_interval: float = Field(
        3600.0,
        ge=0,
        description="Seconds between the background retention passes, which prune every tenant"
        " with retention_days set and no legal hold; 0 turns the task off.",
    )
    prune_batch_size: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Events deleted per retention transaction (default: 10 on SQLite, whose"
        " batches give way to a waiting write after any event; 200 on PostgreSQL).",
    )
    prune_duty: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Most of the time a retention run keeps the writer busy while writes compete"
        " for it; it rests between transactions for the rest (default: 0.1 on SQLite and"
        " PostgreSQL). See prune_idle_duty for the transactions no write waited for.",
    )
    prune_idle_duty: float | None = Field(
        None,
        gt=0,
        le=1,
        description="The same as prune_duty after a retention transaction that no write waited"
        " for (SQLite tells; PostgreSQL always rests by prune_duty); default: 0.05 on SQLite"
        " unless prune_duty is set, else prune_duty's. A sparse ingest meets such a"
        " transaction about this share of the time: its p95 was 1.09-1.30x idle at 0.05,"
        " 1.36-1.40x at 0.1."
        " 1 uses idle writer time freely (about 1,000 realistic events/s when nothing else"
        " writes, with list p95 up to 2.7x idle in the same process meanwhile).",
    )
    prune_pause: float = Field(
        0.005, ge=0, description="Seconds between two retention transactions of one run."
    )
    export_link_ttl: float = Field(
        3600.0,
        gt=0,
        le=7 * 24 * 3600,
        description="Seconds an export's download link (usable without an API token) stays"
        " valid; at most 7 days.",
    )
    log_level: str = Field(
        "info",
        # TRAILKEEP_WORKERS_LOG_LEVEL was its first, misleading name: still read.
        validation_alias=AliasChoices(
            "log_level", "TRAILKEEP_LOG_LEVEL", "TRAILKEEP_WORKERS_LOG_LEVEL"
        ),
        description="uvicorn log level: critical, error, warning, info, debug or trace.",
    )


def unknown_variables(environ: Mapping[str, str], also_known: Iterable[str] = ()) -> list[str]:
    """Warnings for ``TRAILKEEP_*`` variables no setting (nor ``also_known``, the command
    line's own) reads: a misspelt variable is otherwise silently ignored."""
    known = {f"TRAILKEEP_{name.upper()}" for name in Settings.model_fields}
    known |= set(also_known) | set(DEPRECATED_VARIABLES)
    warnings = []
    for name in sorted(n for n in environ if n.upper().startswith("TRAILKEEP_")):
        if name.upper() in known:
            if name.upper() in DEPRECATED_VARIABLES:
                warnings.append(f"{name} is deprecated: use {DEPRECATED_VARIABLES[name.upper()]}")
            continue
        close = difflib.get_close_matches(name.upper(), sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"{name} is not a trailkeep setting and is ignored{hint}")
    return warnings
