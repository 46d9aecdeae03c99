"""What a checkpoint signer remembers outside the database: the last checkpoint it signed per
tenant, in a file beside its key.

A database can be restored from an older backup, or its tail deleted, with nothing inside it
showing that it happened. The signer must then not sign a second, different tree of a size it
has already signed (a fork every verifier pinned to its key would accept). So each signer
remembers, per tenant, the last checkpoint it signed (origin, size, root and the note itself)
in ``<key file>.state``, and the service signs only heads that extend it (``service.forks``).

The file is JSON, mode 0600, replaced atomically and durably (temporary file, ``fsync``,
``rename``, ``fsync`` of the directory) *before* a checkpoint is stored or served: after a
crash it may remember a checkpoint that no one has seen, never miss one that someone has.
Several processes may share one key file (``serve --workers``, several servers on one host):
every read-modify-write holds an exclusive ``flock`` on ``<key file>.state.lock``, and each
writer changes only the tenants it signs, after re-reading what the others wrote.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from trailkeep.errors import InvalidInputError, UnavailableError
from trailkeep.merkle import Verifier

__all__ = ["FORMAT", "Remembered", "SignerState", "StateTransaction", "state_path"]

#: The ``format`` field of a state file; a file of another format is refused, never guessed at.
FORMAT: Final = "trailkeep-signer-state/v1"


def state_path(key_path: Path) -> Path:
    """Where the signer whose key is ``key_path`` keeps its state: ``<key file>.state``."""
    return key_path.with_name(key_path.name + ".state")


@dataclass(frozen=True, slots=True)
class Remembered:
    """The last checkpoint a signer signed for one tenant.

    Attributes:
        origin: the checkpoint's origin line (``<server name>/<tenant>``).
        note: the signed note, so the state file is itself evidence (``verify database``).
        accepted_at: set when an operator accepted the database's head in place of a
            checkpoint the database no longer extends (``trailkeep signer accept-database``).
    """

    tenant_id: str
    origin: str
    size: int
    root_hash: bytes
    note: str
    signed_at: str
    accepted_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "origin": self.origin,
            "size": self.size,
            "root": base64.b64encode(self.root_hash).decode(),
            "note": self.note,
            "signed_at": self.signed_at,
        }
        if self.accepted_at is not None:
            out["accepted_at"] = self.accepted_at
        return out

    @classmethod
    def from_json(cls, tenant_id: str, value: Any) -> Remembered:
        """Raises ``KeyError``, ``TypeError`` or ``ValueError`` on a malformed entry."""
        root = base64.b64decode(value["root"], validate=True)
        size = value["size"]
        if not isinstance(size, int) or size < 0 or len(root) != 32:
            raise ValueError(f"size {size!r} or root of {len(root)} bytes")
        return cls(
            tenant_id,
            str(value["origin"]),
            size,
            root,
            str(value["note"]),
            str(value["signed_at"]),
            value.get("accepted_at"),
        )


class StateTransaction:
    """The remembered checkpoints while the state lock is held; written back on success."""

    def __init__(self, tenants: dict[str, Remembered]) -> None:
        self.tenants = tenants
        self.changed = False

    def remember(self, entry: Remembered) -> None:
        self.tenants[entry.tenant_id] = entry
        self.changed = True


class SignerState:
    """The state file of one signing key.

    Args:
        path: the state file (``state_path(key file)``).
        key: the signing key's verifier; a file written for another key is refused.
    """

    def __init__(self, path: Path, key: Verifier) -> None:
        self.path = path
        self._key = key.key_string()
        self._lock_path = path.with_name(path.name + ".lock")
        self._cached: tuple[tuple[int, ...], dict[str, Remembered]] = ((), {})

    @classmethod
    def beside(cls, key_path: Path, key: Verifier) -> SignerState:
        """The state of the signing key stored at ``key_path``."""
        return cls(state_path(key_path), key)

    def read(self) -> dict[str, Remembered]:
        """The remembered checkpoints by tenant, without the lock (renames are atomic).

        The same dict is returned while the file is unchanged (its inode, size and mtime), so
        callers must copy it before changing it, and may compare it by identity.

        Raises:
            InvalidInputError: the file is unreadable, malformed, or belongs to another key;
                the message names the file. A missing file is an empty state.
        """
        try:
            with self.path.open("rb") as fh:
                info = os.fstat(fh.fileno())
                version = (info.st_ino, info.st_size, info.st_mtime_ns)
                if version == self._cached[0]:
                    return self._cached[1]
                raw = fh.read()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise InvalidInputError(f"cannot read signer state {self.path}: {exc}") from None
        tenants = self._parse(raw)
        self._cached = (version, tenants)
        return tenants

    def _parse(self, raw: bytes) -> dict[str, Remembered]:
        try:
            value = orjson.loads(raw)
            if value["format"] != FORMAT:
                raise ValueError(f"format {value['format']!r}, want {FORMAT!r}")
            tenants = {t: Remembered.from_json(t, v) for t, v in value["tenants"].items()}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise InvalidInputError(
                f"signer state {self.path} is malformed ({exc}); restore it from a backup of"
                " the key directory, or see docs/operations.md (restoring a backup)"
            ) from None
        if value.get("key") != self._key:
            raise InvalidInputError(
                f"signer state {self.path} belongs to the key {value.get('key')!r}, not to"
                f" {self._key!r}; keep each state file beside its own key"
            )
        return tenants

    @contextmanager
    def transaction(self, *, wait: bool = True) -> Iterator[StateTransaction | None]:
        """Hold the state lock; yield the current state, and write it back if it changed.

        Args:
            wait: block until the lock is free; otherwise yield None at once if another
                process (or thread) holds it.
        """
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InvalidInputError(
                f"cannot open the signer state lock {self._lock_path}: {exc}; the signer"
                " state needs a writable, persistent directory (TRAILKEEP_SIGNER_STATE)"
            ) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield None
                return
            txn = StateTransaction(dict(self.read()))
            yield txn
            if txn.changed:
                try:
                    self._write(txn.tenants)
                except OSError as exc:
                    raise UnavailableError(
                        f"cannot write signer state {self.path}: {exc}; nothing was signed"
                    ) from None
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _write(self, tenants: dict[str, Remembered]) -> None:
        body = orjson.dumps(
            {
                "format": FORMAT,
                "key": self._key,
                "tenants": {t: tenants[t].to_json() for t in sorted(tenants)},
            },
            option=orjson.OPT_INDENT_2,
        )
        write_durably(self.path, body)
        info = self.path.stat()
        self._cached = ((info.st_ino, info.st_size, info.st_mtime_ns), tenants)


def write_durably(path: Path, body: bytes) -> None:
    """Replace ``path`` with ``body`` (mode 0600) so that a crash leaves the old or the new file.

    The new content is fsynced before the rename and the directory after it, so once this
    returns the new file survives a power cut.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
