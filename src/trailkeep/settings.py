"""Server settings: one validated object, from flags or ``TRAILKEEP_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


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
    server_name: str = Field(
        "trailkeep.local",
        description="Origin prefix of checkpoints (<server_name>/<tenant>) and key name.",
    )
    checkpoint_interval: float = Field(
        1.0, gt=0, description="Seconds between checkpoints of a growing tenant log."
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
    integrity: bool = Field(
        True,
        description="Commit fields and build the Merkle tree on ingest. Turn off only to"
        " measure its cost: events written with it off have no proofs.",
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
    max_heavy_reads: int = Field(
        2,
        ge=1,
        description="Most heavy reads (searches, counts, facets, deep offsets) running at once;"
        " more wait their turn, so cheap reads never queue behind them.",
    )
    workers_log_level: str = Field("info", description="uvicorn log level.")
