"""Files that hold events or keys: readable and writable by their owner only (mode 0600).

A database, its WAL and shared-memory files, a dump or an export hold the same data the API
guards with keys; the process umask (often 022) must not decide who else may read them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import BinaryIO, Final

__all__ = ["PRIVATE_MODE", "make_private", "open_private", "prepare_sqlite_file"]

log = logging.getLogger(__name__)

PRIVATE_MODE: Final = 0o600
#: The files SQLite keeps beside a database (the journal only outside WAL mode).
_SQLITE_SIDE_FILES: Final = ("-wal", "-shm", "-journal")


def open_private(path: Path) -> BinaryIO:
    """Open ``path`` for writing (created or truncated), mode 0600 whatever it was before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # O_CREAT keeps the mode of a file that already existed
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


def make_private(path: Path) -> None:
    """Take away every permission of group and others on an existing file (no-op if absent)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        os.chmod(path, mode & 0o700)
        log.warning("%s was readable by others (mode %o); changed to %o", path, mode, mode & 0o700)


def prepare_sqlite_file(path: Path) -> None:
    """Create a SQLite database file with mode 0600 before SQLite opens it, or tighten it.

    SQLite gives a new WAL and shared-memory file the mode of the main file, so a main file
    created 0600 here keeps all three private; files left by an older version are fixed.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
    for name in (path.name, *(path.name + side for side in _SQLITE_SIDE_FILES)):
        make_private(path.with_name(name))
