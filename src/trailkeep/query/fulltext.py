"""Full-text search: what a backend indexes for each event (the SQL is ``storage._fulltext``).

Free words and phrases match, case-insensitively, the words of an event's ``message`` and of
its other values (``search_document``); ``message:word`` matches in the message only. The
storage compiler hands every maximal And/Or group of such terms to one ``FullText`` strategy, so
``error timeout`` is one index lookup, not two:

Each backend indexes these documents its own way and spells the match in
``trailkeep.storage._fulltext``.

A term with no letters or digits (``"--"``) can match no indexed word, so the compiler turns it
into a false condition itself rather than asking the index (which would answer inconsistently
across engines).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["SearchDocument", "has_words", "in_document", "search_document"]

#: Fields that are not indexed as text: the message has its own column, the timestamp is
#: searched by range, and a signature is noise.
_NOT_INDEXED: Final = frozenset({"message", "timestamp", "signature"})


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """The text a backend indexes for one event.

    Attributes:
        message: the event's ``message`` (empty when it has none or it was redacted).
        fields: every other string and number of the event, one per line, in document order.
    """

    message: str
    fields: str


def search_document(content: Mapping[str, Any]) -> SearchDocument:
    """What to index for an event's content; recompute it when a redaction changes the content."""
    message = content.get("message")
    values: list[str] = []
    for key, value in content.items():
        if key not in _NOT_INDEXED:
            _leaves(value, values)
    return SearchDocument(message if type(message) is str else "", "\n".join(values))


def in_document(path: tuple[str, ...]) -> bool:
    """Whether every string at ``path`` in an event's content is, as it is, one of the lines of
    its ``SearchDocument`` (the message, or a line of ``fields``): the message itself, and any
    path under a key ``search_document`` indexes."""
    if not path:
        return False
    return path == ("message",) or path[0] not in _NOT_INDEXED


def _leaves(value: Any, out: list[str]) -> None:
    """Append ``value``'s strings and numbers (not booleans) to ``out``, in document order.

    (Appending, not nested generators: the writer runs this for every event it stores.)
    """
    kind = type(value)
    if kind is str:
        out.append(value)
    elif kind is dict or kind is list:
        for item in value.values() if kind is dict else value:
            if type(item) is str:
                out.append(item)
            else:
                _leaves(item, out)
    elif kind is int or kind is float:
        out.append(str(value))


def has_words(text: str) -> bool:
    """Whether ``text`` has a letter or decimal digit, which every engine indexes as a word.

    Other numerals (``²``, ``½``) are word characters for FTS5 but blanks for PostgreSQL's
    parser, so a term of only those would match differently; it matches nothing instead.
    """
    return any(ch.isalpha() or ch.isdecimal() for ch in text)
