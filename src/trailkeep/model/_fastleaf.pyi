"""Types of the C part, ``_fastleaf.c``: one event's RFC 9162 leaf hash in a single call."""

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
