"""Splitting query text into tokens: parentheses, operators and whole terms.

A term is lexed in one piece, ``field:value`` included, because where a value ends depends on
whether a field precedes it. The rules, each checked in order at the start of a token:

* whitespace separates tokens; ``(`` and ``)`` are tokens of their own;
* ``-`` directly followed by a non-space is a negation (``-outcome:failure``);
* ``"..."`` is a quoted phrase, where ``\\"`` and ``\\\\`` are the only escapes;
* ``path:``, ``path>``, ``path>=``, ``path<``, ``path<=`` start a field term, where a path is
  segments joined by ``.``: the first a bare name starting with a letter or ``_``, the others
  bare (``[\\w-]+``) or quoted (``metadata."user agent"``); the value follows with no space;
* anything else is a bare word, running to the next space, parenthesis or ``"``, with ``\\``
  making the next character literal; the bare words ``AND``, ``OR`` and ``NOT`` (upper case,
  unescaped) are operators.

A value ending in an unescaped ``*`` (after a bare word or right after a closing quote) is a
prefix. Every loop consumes at least one character per step and the patterns are possessive,
so lexing is linear in the length of the text.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final, cast

from trailkeep.query.ast import Op, Term
from trailkeep.query.errors import QuerySyntaxError

__all__ = ["KEYWORDS", "Kind", "Token", "tokenize", "unquote"]


class Kind(enum.Enum):
    LPAREN = "("
    RPAREN = ")"
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    TERM = "term"


KEYWORDS: Final = {"AND": Kind.AND, "OR": Kind.OR, "NOT": Kind.NOT}

_QUOTED: Final = r'"(?:[^"\\]|\\.)*+"'
_FIELD: Final = re.compile(
    rf"(?P<first>[^\W\d][\w-]*+)(?P<rest>(?:\.(?:[\w-]++|{_QUOTED}))*+)(?P<op>:|>=|<=|>|<)",
    re.DOTALL,
)
_SEGMENT: Final = re.compile(rf"\.(?:(?P<bare>[\w-]++)|(?P<quoted>{_QUOTED}))", re.DOTALL)
_UNQUOTE: Final = re.compile(r'\\(["\\])')
_DELIMITERS: Final = frozenset('()"')


@dataclass(frozen=True, slots=True)
class Token:
    """One token.

    Attributes:
        kind: what the token is.
        position: offset of its first character.
        text: the source text it covers.
        term: for ``TERM`` tokens, the term as written (not yet checked against the fields).
        field_text: for field terms, the path as written (``metadata."a b"``).
        value_position: for terms, the offset where the value starts.
    """

    kind: Kind
    position: int
    text: str
    term: Term | None = None
    field_text: str = ""
    value_position: int = 0


def unquote(body: str) -> str:
    """The text inside a pair of quotes with its two escapes (``\\"``, ``\\\\``) resolved."""
    return _UNQUOTE.sub(r"\1", body)


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, in order.

    Raises:
        QuerySyntaxError: an unterminated quote, a ``-`` followed by nothing, or a field
            operator followed by no value.
    """
    return _Lexer(text).run()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []

    def run(self) -> list[Token]:
        text, pos = self.text, 0
        while pos < len(text):
            ch = text[pos]
            if ch.isspace():
                pos += 1
            elif ch in "()":
                self._add(Kind.LPAREN if ch == "(" else Kind.RPAREN, pos, pos + 1)
                pos += 1
            elif ch == "-":
                pos = self._dash(pos)
            elif ch == '"':
                pos = self._free_phrase(pos)
            elif (m := _FIELD.match(text, pos)) is not None:
                pos = self._field_term(m)
            else:
                pos = self._free_word(pos)
        return self.tokens

    def _add(
        self,
        kind: Kind,
        start: int,
        end: int,
        term: Term | None = None,
        *,
        field_text: str = "",
        value_position: int = 0,
    ) -> None:
        source = self.text[start:end]
        self.tokens.append(Token(kind, start, source, term, field_text, value_position))

    def _dash(self, pos: int) -> int:
        if pos + 1 == len(self.text) or self.text[pos + 1].isspace():
            raise QuerySyntaxError(
                pos, "expected a term right after '-' (write \\- to search for a dash)"
            )
        self._add(Kind.NOT, pos, pos + 1)
        return pos + 1

    def _free_phrase(self, start: int) -> int:
        value, end = self._quoted(start)
        prefix, end = self._star(end)
        term = Term(None, ":", value, phrase=True, prefix=prefix, position=start)
        self._add(Kind.TERM, start, end, term, value_position=start)
        return end

    def _free_word(self, start: int) -> int:
        value, prefix, end = self._bare(start)
        keyword = KEYWORDS.get(self.text[start:end])
        if keyword is not None:
            self._add(keyword, start, end)
        else:
            term = Term(None, ":", value, prefix=prefix, position=start)
            self._add(Kind.TERM, start, end, term, value_position=start)
        return end

    def _field_term(self, m: re.Match[str]) -> int:
        start, at = m.start(), m.end()
        path = (m["first"], *_segments(m["rest"]))
        field_text, op = m.group("first") + m.group("rest"), cast(Op, m["op"])
        if at == len(self.text) or self.text[at].isspace() or self.text[at] in "()":
            raise QuerySyntaxError(at, f"expected a value after '{field_text}{op}'")
        if self.text[at] == '"':
            value, end = self._quoted(at)
            prefix, end = self._star(end)
            phrase = True
        else:
            value, prefix, end = self._bare(at)
            phrase = False
        term = Term(path, op, value, phrase=phrase, prefix=prefix, position=start)
        self._add(Kind.TERM, start, end, term, field_text=field_text, value_position=at)
        return end

    def _quoted(self, start: int) -> tuple[str, int]:
        """The unescaped text of the quoted string opening at ``start``, and where it ends."""
        text, pos, out = self.text, start + 1, list[str]()
        while pos < len(text):
            ch = text[pos]
            if ch == '"':
                return "".join(out), pos + 1
            if ch == "\\" and pos + 1 < len(text) and text[pos + 1] in '"\\':
                pos += 1
                ch = text[pos]
            out.append(ch)
            pos += 1
        raise QuerySyntaxError(start, "unterminated quoted string: missing the closing '\"'")

    def _star(self, pos: int) -> tuple[bool, int]:
        """Whether a ``*`` follows a closing quote at ``pos`` (a prefix), and where it ends."""
        if pos < len(self.text) and self.text[pos] == "*":
            return True, pos + 1
        return False, pos

    def _bare(self, start: int) -> tuple[str, bool, int]:
        """A bare word from ``start``: its unescaped text, whether it is a prefix, its end."""
        text, pos, out = self.text, start, list[str]()
        while pos < len(text):
            ch = text[pos]
            if ch.isspace() or ch in _DELIMITERS:
                break
            if ch == "\\" and pos + 1 < len(text):
                out.append(text[pos + 1])
                pos += 2
                continue
            if ch == "*" and self._ends_word(pos + 1):
                return "".join(out), True, pos + 1
            out.append(ch)
            pos += 1
        return "".join(out), False, pos

    def _ends_word(self, pos: int) -> bool:
        return pos == len(self.text) or self.text[pos].isspace() or self.text[pos] in _DELIMITERS


def _segments(rest: str) -> list[str]:
    """The segments after the first of a matched path (``.b."c d"`` → ``["b", "c d"]``)."""
    out: list[str] = []
    for m in _SEGMENT.finditer(rest):
        bare = m["bare"]
        out.append(bare if bare is not None else unquote(m["quoted"][1:-1]))
    return out
