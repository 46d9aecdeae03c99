"""Downloaded exports hold a tenant's events: written readable by their owner only (0600)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

__all__ = ["open_private", "publish"]


def open_private(path: Path) -> BinaryIO:
    """Open ``path`` for writing (created or truncated), mode 0600 whatever the umask says."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT keeps the mode of a file that already existed
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


def publish(partial: Path, target: Path, *, overwrite: bool) -> None:
    """Move a finished download into place; without ``overwrite``, never over an existing file.

    Raises:
        FileExistsError: ``target`` exists and ``overwrite`` is false (``partial`` is removed).
    """
    if overwrite:
        partial.replace(target)
        return
    try:
        os.link(partial, target)  # fails, atomically, if the name is taken
    finally:
        partial.unlink()
