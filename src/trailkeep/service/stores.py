"""Opening the store a database URL names, wired with the integrity contract's leaf function."""

from __future__ import annotations

from pathlib import Path

from trailkeep.errors import InvalidInputError
from trailkeep.model.commitments import leaf_hash, leaf_input, leaf_input_from
from trailkeep.model.event import NewEvent
from trailkeep.storage.base import DEFAULT_QUERY_TIMEOUT, Store

__all__ = ["event_leaf", "open_store", "sqlite_path"]


def event_leaf(tenant_id: str, seq: int, event: NewEvent) -> bytes:
    """The RFC 9162 leaf hash of a sequenced event (DESIGN §3)."""
    if event.leaf_prefix is not None:  # the hot path: the writer only adds the position
        return leaf_hash(leaf_input_from(event.leaf_prefix, tenant_id, seq))
    return leaf_hash(leaf_input(tenant_id, seq, event.id, event.received_at, event.commitments))


def sqlite_path(url: str) -> str:
    """The file path in a ``sqlite:///PATH`` URL (``sqlite:////abs/path`` for absolute)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise InvalidInputError(f"not a SQLite URL: {url!r} (expected sqlite:///PATH)")
    return url[len(prefix) :]


def open_store(
    url: str,
    *,
    integrity: bool = True,
    sqlite_synchronous: str = "FULL",
    query_timeout: float = DEFAULT_QUERY_TIMEOUT,
) -> Store:
    """Open (and migrate) the store for a database URL.

    Args:
        query_timeout: seconds an event read may run before ``QueryTimeoutError``.
    """
    leaf_fn = event_leaf if integrity else None
    if url.startswith("sqlite:"):
        from trailkeep.storage.sqlite import SQLiteStore

        path = sqlite_path(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        store: Store = SQLiteStore(
            path,
            leaf_function=leaf_fn,
            synchronous=sqlite_synchronous,
            query_timeout=query_timeout,
        )
    elif url.startswith(("postgresql:", "postgres:")):
        try:  # psycopg is an optional dependency: only PostgreSQL users install it
            from trailkeep.storage.postgres import PostgresStore
        except ImportError as exc:
            raise InvalidInputError(
                f"PostgreSQL needs psycopg ({exc}): pip install 'trailkeep[postgres]'"
            ) from None
        store = PostgresStore(url, leaf_function=leaf_fn, query_timeout=query_timeout)
    else:
        raise InvalidInputError(
            f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://..."
        )
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store
