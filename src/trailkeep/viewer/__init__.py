"""The web viewer (``/ui/``): pages to browse, search, verify and export a tenant's log.

The server only renders page shells; the browser holds the API key (session storage) and calls
the native API itself, and it recomputes every hash and checks every signature on its own, so
that what the page calls *verified* does not rest on the server's word.
"""

from __future__ import annotations

from ._routes import install_viewer

__all__ = ["install_viewer"]
