"""The one error the search language raises: a query the caller must fix, and where.

::

    TrailkeepError
    └── InvalidInputError
        └── QuerySyntaxError     a search query that does not lex, parse or validate (400)

Every failure of ``parse`` (and of the storage compiler) on user text is a
``QuerySyntaxError``, never another exception, so the API maps them all to one 400 with a
message that points at the spot.
"""

from __future__ import annotations

from trailkeep.errors import InvalidInputError

__all__ = ["QuerySyntaxError"]


class QuerySyntaxError(InvalidInputError):
    """A search query that cannot be read, with the 0-based character offset of the problem.

    Attributes:
        position: where in the query text the problem is (0-based, in characters; the length
            of the query for "unexpected end").
        reason: the message without its ``at position N:`` prefix.
    """

    code = "INVALID_QUERY"

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"at position {position}: {reason}")
        self.position = position
        self.reason = reason
