"""The bundle of services one app serves, built from settings and closed with the app."""

from __future__ import annotations

from dataclasses import dataclass

from trailkeep.service.admin import Administration
from trailkeep.service.auth import Authenticator
from trailkeep.service.events import EventService, Limits
from trailkeep.service.exports import ExportService
from trailkeep.service.log import Checkpointer, LogService
from trailkeep.service.prepare_pool import PreparePool
from trailkeep.service.reads import ReadGate
from trailkeep.service.redaction import RedactionService
from trailkeep.service.retention import (
    DEFAULT_BATCH,
    DEFAULT_DUTY,
    SQLITE_BATCH,
    SQLITE_DUTY,
    SQLITE_IDLE_DUTY,
    RetentionService,
    RetentionTask,
)
from trailkeep.service.signer_state import SignerState, state_path
from trailkeep.service.signing import load_or_create_signer
from trailkeep.service.stores import open_store
from trailkeep.service.stream import LogNotifier, NotifyingEventService, StreamService
from trailkeep.service.tenants import TenantService
from trailkeep.settings import Settings
from trailkeep.storage.base import Store

__all__ = ["Services"]


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: Store
    events: EventService
    tenants: TenantService
    admin: Administration
    auth: Authenticator
    log: LogService
    redaction: RedactionService
    checkpointer: Checkpointer
    streams: StreamService
    exports: ExportService
    retention: RetentionService
    #: The background retention pass (None when ``prune_interval`` is 0).
    retention_task: RetentionTask | None
    #: Worker processes preparing large batches (None when ``prepare_workers`` is 0).
    prepare_pool: PreparePool | None = None

    @classmethod
    def build(cls, settings: Settings) -> Services:
        store = open_store(
            settings.database,
            sqlite_synchronous=settings.sqlite_synchronous,
            query_timeout=settings.query_timeout,
        )
        gate = ReadGate(settings.max_heavy_reads, wait=settings.query_timeout)
        limits = Limits(
            settings.max_event_bytes,
            settings.max_batch_events,
            max_future_skew=settings.max_future_skew,
        )
        signer = load_or_create_signer(settings.signing_key, settings.server_name)
        state_file = settings.signer_state or state_path(settings.signing_key)
        state = SignerState(state_file, signer.verifier())
        log = LogService(
            store,
            signer,
            settings.server_name,
            state=state,
            sweep_interval=5 * settings.checkpoint_interval,
        )
        try:
            log.protect()  # before any write: fence tenants whose database forks the log
        except BaseException:
            store.close()
            raise
        notifier = LogNotifier()
        streams = StreamService(
            store,
            notifier,
            poll_interval=settings.stream_poll_interval,
            heartbeat=settings.stream_heartbeat,
            checkpoint_interval=settings.stream_checkpoint_interval,
        )
        sqlite = settings.database.startswith("sqlite:")
        retention = RetentionService(
            store,
            batch_size=settings.prune_batch_size or (SQLITE_BATCH if sqlite else DEFAULT_BATCH),
            pause=settings.prune_pause,
            duty=settings.prune_duty or (SQLITE_DUTY if sqlite else DEFAULT_DUTY),
            # Unset: SQLite's own unless the duty is set, else (None) the duty.
            idle_duty=settings.prune_idle_duty
            or (SQLITE_IDLE_DUTY if sqlite and settings.prune_duty is None else None),
        )
        task = (
            RetentionTask(retention, settings.prune_interval) if settings.prune_interval else None
        )
        events = NotifyingEventService(store, limits, notifier, gate=gate)
        pool = PreparePool(settings.prepare_workers, limits) if settings.prepare_workers else None
        events.prepare_pool = pool  # its processes start with the first large batch
        return cls(
            settings=settings,
            store=store,
            events=events,
            tenants=TenantService(store),
            admin=Administration(store),
            auth=Authenticator(store),
            log=log,
            redaction=RedactionService(store, limits),
            checkpointer=Checkpointer(log, store, settings.checkpoint_interval),
            streams=streams,
            exports=ExportService(store, log, link_ttl=settings.export_link_ttl),
            retention=retention,
            retention_task=task,
            prepare_pool=pool,
        )

    def start(self) -> None:
        """Start the background work: checkpoint signing and the retention pass."""
        self.checkpointer.start()
        if self.retention_task is not None:
            self.retention_task.start()

    def close(self) -> None:
        if self.prepare_pool is not None:
            self.prepare_pool.close()
        if self.retention_task is not None:
            self.retention_task.stop()
        self.retention.stop()
        self.checkpointer.stop()
        self.store.close()
