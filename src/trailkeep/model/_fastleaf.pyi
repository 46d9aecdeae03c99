"""Types of the C part, ``_fastleaf.c``: an event's leaf hash, or its commitments, in a call."""

from collections.abc import Callable
from collections.abc import Set as AbstractSet
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
def check_rows(
    rows: list[tuple[Any, ...]],
    start: int,
    end: int,
    tenant_json: str,
    loads: Callable[[Any], Any],
    watch: AbstractSet[int],
    tally: Any,
    /,
) -> tuple[
    list[bytes | None],
    list[tuple[str | None, ...]],
    list[tuple[Any, ...]],
    list[tuple[int, str]],
    int,
]: ...
def parents(nodes: list[bytes], /) -> list[bytes]: ...
def climb(leaves: bytes, prefix: bool, /) -> list[bytes]: ...
def sha256_pair(a: bytes, b: bytes, /) -> tuple[bytes, bytes] | None: ...

SHA256_PAIRS: Final[int]
AUDIT_AGGREGATES: Final[int]

class SQLiteError(Exception): ...

class SQLiteRows:
    rowid_rows: int
    def __init__(
        self,
        path: str,
        sql: str,
        leaves: str | None = None,
        nodes: str | None = None,
        pangea: str | None = None,
        rollups: str | None = None,
        by_rowid: str | None = None,
        bounds: str | None = None,
    ) -> None: ...
    def check(
        self,
        tenant_id: str,
        start: int,
        end: int,
        tenant_json: str,
        loads: Callable[[Any], Any],
        watch: AbstractSet[int],
        tally: Any,
        /,
    ) -> tuple[
        list[bytes | None],
        list[tuple[str | None, ...]],
        list[tuple[Any, ...]],
        list[tuple[int, str]],
        int,
    ]: ...
    def hashes(self, tree: int, tenant_id: str, level: int, start: int, end: int, /) -> bytes: ...
    def rollups_match(self, tenant_id: str, tally: Tally, /) -> bool: ...
    def close(self) -> None: ...

def bundle_chunk(
    chunk: bytes | memoryview,
    seq: int,
    limit: int,
    tenant_id: str,
    tenant_json: str,
    loads: Callable[[Any], Any],
    /,
) -> tuple[list[bytes], list[int]] | None: ...
def bundle_events(
    lines: list[bytes], seq: int, tenant_id: str, tenant_json: str, loads: Callable[[Any], Any], /
) -> list[bytes | None]: ...

class Tally:
    def __init__(
        self, ts_column: int, total: str, groups: tuple[tuple[tuple[str, int], ...], ...]
    ) -> None: ...
    def add(self, rows: Any, /) -> list[Any]: ...
    def expected(self) -> dict[tuple[str, str, str], int]: ...
    def matches(self, stored: dict[tuple[str, str, str], int], /) -> bool: ...
