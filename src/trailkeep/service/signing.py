"""The checkpoint signing key: one file, created on first start, readable only by its owner."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from trailkeep.errors import InvalidInputError, TrailkeepError
from trailkeep.merkle import Signer

__all__ = ["load_existing_signer", "load_or_create_signer"]

log = logging.getLogger(__name__)


def load_or_create_signer(path: Path, name: str) -> Signer:
    """Read the signer key from ``path``, or create it there (mode 0600) if the file is missing.

    Several processes may start at once against one key file: creation is exclusive, and a
    process that loses the race reads the winner's key.

    Args:
        path: the key file; it holds a C2SP ``PRIVATE+KEY+<name>+...`` string.
        name: the key name for a new key (the server name). An existing key keeps its own.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    signer = Signer.generate(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(signer.key_string() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    log.info("created checkpoint signing key %s", path)
    return signer


def _read(path: Path) -> Signer:
    text = path.read_text().strip()
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("signing key %s is readable by others (mode %o); chmod 600 it", path, mode)
    try:
        return Signer.parse(text)
    except TrailkeepError as exc:
        raise InvalidInputError(f"{path} is not a trailkeep signing key: {exc.message}") from None


def load_existing_signer(path: Path) -> Signer:
    """Read a signer key that must already exist (for tools that must not create one)."""
    try:
        return _read(path)
    except FileNotFoundError:
        raise InvalidInputError(f"no signing key at {path}") from None
