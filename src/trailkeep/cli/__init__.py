"""The ``trailkeep`` command line: the server, administration, and (through the SDK) a client."""

from __future__ import annotations

from .app import app

__all__ = ["main"]


def main() -> None:
    """Entry point of the ``trailkeep`` console script."""
    app()
