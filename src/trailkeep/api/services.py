"""The bundle of services one app serves, built from settings and closed with the app."""

from __future__ import annotations

from dataclasses import dataclass

from trailkeep.service.auth import Authenticator
from trailkeep.service.events import EventService, Limits
from trailkeep.service.exports import ExportService
from trailkeep.service.log import Checkpointer, LogService
from trailkeep.service.reads import ReadGate
from trailkeep.service.redaction import RedactionService
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
    auth: Authenticator
    log: LogService
    redaction: RedactionService
    checkpointer: Checkpointer
    streams: StreamService
    exports: ExportService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        store = open_store(
            settings.database,
            integrity=settings.integrity,
            sqlite_synchronous=settings.sqlite_synchronous,
            query_timeout=settings.query_timeout,
        )
        gate = ReadGate(settings.max_heavy_reads, wait=settings.query_timeout)
        limits = Limits(settings.max_event_bytes, settings.max_batch_events)
        signer = load_or_create_signer(settings.signing_key, settings.server_name)
        log = LogService(store, signer, settings.server_name)
        notifier = LogNotifier()
        streams = StreamService(
            store,
            notifier,
            poll_interval=settings.stream_poll_interval,
            heartbeat=settings.stream_heartbeat,
            checkpoint_interval=settings.stream_checkpoint_interval,
        )
        return cls(
            settings=settings,
            store=store,
            events=NotifyingEventService(
                store, limits, notifier, integrity=settings.integrity, gate=gate
            ),
            tenants=TenantService(store),
            auth=Authenticator(store),
            log=log,
            redaction=RedactionService(store, limits, integrity=settings.integrity),
            checkpointer=Checkpointer(log, store, settings.checkpoint_interval),
            streams=streams,
            exports=ExportService(store, log, integrity=settings.integrity),
        )

    def close(self) -> None:
        self.checkpointer.stop()
        self.store.close()
