"""Types of the C part, ``_fastleaf.c``: an event's leaf hash, or its commitments, in a call."""

from typing import Any, Final

LEAF_VERSION: Final[int]

def leaf(
    keys: tuple[str, ...],
    salts: tuple[Any, ...],
    values: tuple[Any, ...],
    event_id: Any,
    received_at: Any,
    seq: Any,
    tenant_json: str,
    expected: Any,
    /,
) -> bytes | None: ...
def commit(
    paths: list[str], values: dict[str, Any], pool: bytes, /
) -> tuple[dict[str, bytes], dict[str, bytes]] | None: ...
def prefix(commitments: dict[str, bytes], event_id: Any, received_at: Any, /) -> bytes | None: ...
