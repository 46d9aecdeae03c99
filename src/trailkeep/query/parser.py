"""Reading search-language text into a checked syntax tree (grammar: ``docs/search.md``).

Precedence is NOT > AND > OR; adjacent terms are ANDed. ``parse`` checks everything it can
without a clock: fields exist, whole numbers and times read, limits hold. The parser is
recursive only through parentheses and NOT, and both count towards ``MAX_DEPTH``, so no input
recurses deeply; every step consumes a token, so parsing is linear.
"""

from __future__ import annotations

from typing import Final

from trailkeep.errors import TimeParseError
from trailkeep.query.ast import COMPARISONS, And, Node, Not, Or, Term
from trailkeep.query.errors import QuerySyntaxError
from trailkeep.query.fields import FieldError, FieldKind, UnknownFieldError, resolve
from trailkeep.query.lexer import Kind, Token, tokenize
from trailkeep.query.values import as_integer, as_time

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "MAX_TERMS", "parse"]

#: Longest query text, in characters.
MAX_LENGTH: Final = 2000
#: Most terms (free words, phrases and field conditions) in one query.
MAX_TERMS: Final = 64
#: Deepest nesting of parentheses and negations.
MAX_DEPTH: Final = 16


def parse(text: str) -> Node:
    """The syntax tree of a search query.

    Raises:
        QuerySyntaxError: the query is empty, too long, malformed, names an unknown field, or
            has a value its field cannot hold; ``position`` says where.
    """
    if len(text) > MAX_LENGTH:
        raise QuerySyntaxError(
            MAX_LENGTH, f"the query is {len(text)} characters long; the limit is {MAX_LENGTH}"
        )
    _check_characters(text)
    tokens = tokenize(text)
    if not tokens:
        raise QuerySyntaxError(0, "the query is empty")
    return _Parser(text, tokens).run()


def _check_characters(text: str) -> None:
    """Refuse what no backend can bind: NUL (PostgreSQL text) and unpaired surrogates (UTF-8)."""
    for position, ch in enumerate(text):
        if ch == "\x00" or "\ud800" <= ch <= "\udfff":
            raise QuerySyntaxError(position, f"the query contains the character {ch!r}")


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0
        self.term_count = 0

    # -- helpers ------------------------------------------------------------------------

    def _peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _missing_term(self, after: Token | None) -> QuerySyntaxError:
        """The error for a place where a term should be and is not."""
        found = self._peek()
        where = f" after '{after.text}'" if after is not None else ""
        if found is None:
            return QuerySyntaxError(len(self.text), f"expected a term{where}, found the end")
        if found.kind is Kind.RPAREN and after is None:
            return QuerySyntaxError(found.position, "unbalanced ')'")
        return QuerySyntaxError(found.position, f"expected a term{where}, found '{found.text}'")

    # -- grammar ------------------------------------------------------------------------

    def run(self) -> Node:
        node = self._or(depth=0, after=None)
        extra = self._peek()
        if extra is not None:  # only a ')' stops every level of the grammar
            raise QuerySyntaxError(extra.position, "unbalanced ')'")
        return node

    def _or(self, depth: int, after: Token | None) -> Node:
        children = [self._and(depth, after)]
        while (token := self._peek()) is not None and token.kind is Kind.OR:
            children.append(self._and(depth, self._next()))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def _and(self, depth: int, after: Token | None) -> Node:
        children = [self._unary(depth, after)]
        while (token := self._peek()) is not None and token.kind not in (Kind.OR, Kind.RPAREN):
            operator = self._next() if token.kind is Kind.AND else None
            children.append(self._unary(depth, operator))
        return children[0] if len(children) == 1 else And(tuple(children))

    def _unary(self, depth: int, after: Token | None) -> Node:
        token = self._peek()
        if token is None or token.kind is not Kind.NOT:
            return self._primary(depth, after)
        self._enter(token, depth)
        self._next()
        return Not(self._unary(depth + 1, token))

    def _primary(self, depth: int, after: Token | None) -> Node:
        token = self._peek()
        if token is None or token.kind in (Kind.AND, Kind.OR, Kind.RPAREN):
            if token is not None and token.kind is not Kind.RPAREN and after is None:
                raise QuerySyntaxError(token.position, f"expected a term before '{token.text}'")
            raise self._missing_term(after)
        self._next()
        if token.term is not None:
            return self._term(token, token.term)
        return self._group(token, depth)

    def _group(self, opening: Token, depth: int) -> Node:
        """What follows an opening parenthesis, through its closing one."""
        self._enter(opening, depth)
        closing = self._peek()
        if closing is not None and closing.kind is Kind.RPAREN:
            raise QuerySyntaxError(opening.position, "empty parentheses")
        node = self._or(depth + 1, opening)
        if self._peek() is None:  # _or stops only at the end or at a ')'
            raise QuerySyntaxError(opening.position, "unbalanced '(': missing its ')'")
        self._next()
        return node

    def _enter(self, token: Token, depth: int) -> None:
        if depth >= MAX_DEPTH:
            raise QuerySyntaxError(
                token.position,
                f"the query nests more than {MAX_DEPTH} levels of parentheses and negations",
            )

    def _term(self, token: Token, term: Term) -> Term:
        self.term_count += 1
        if self.term_count > MAX_TERMS:
            raise QuerySyntaxError(token.position, f"the query has more than {MAX_TERMS} terms")
        if term.field is None:
            _check_free(token, term)
        else:
            _check_field(token, term, term.field)
        return term


def _check_free(token: Token, term: Term) -> None:
    if term.value:
        return
    if term.phrase:
        raise QuerySyntaxError(token.position, 'empty quotes: put the words to find in "..."')
    raise QuerySyntaxError(token.position, "a '*' needs at least one character before it")


def _check_field(token: Token, term: Term, field: tuple[str, ...]) -> None:
    try:
        spec = resolve(field)
    except UnknownFieldError as exc:
        hint = " (to search for text containing ':', '<' or '>', put it in quotes)"
        raise QuerySyntaxError(token.position, f"{exc}{hint}") from None
    except FieldError as exc:
        raise QuerySyntaxError(token.position, str(exc)) from None
    written = f"{token.field_text}{term.op}"
    at = token.value_position
    if term.prefix and term.op in COMPARISONS:
        raise QuerySyntaxError(at, f"'{written}' compares; a '*' prefix only works with ':'")
    if spec.kind is FieldKind.FULL_TEXT:
        _check_full_text(token, term, written)
    elif spec.kind is FieldKind.INTEGER:
        if term.prefix:
            raise QuerySyntaxError(at, f"'{written}' needs a whole number, not a prefix")
        if as_integer(term.value) is None:
            raise QuerySyntaxError(at, f"'{written}' needs a whole number, not {term.value!r}")
    elif spec.kind is FieldKind.TIME and not term.prefix:
        try:
            parsed = as_time(term.value, param=token.field_text, now=None)
        except TimeParseError as exc:
            raise QuerySyntaxError(at, exc.message) from None
        if parsed is None:
            raise QuerySyntaxError(at, f"'{written}' needs a time")


def _check_full_text(token: Token, term: Term, written: str) -> None:
    if term.op in COMPARISONS:
        raise QuerySyntaxError(
            token.position, f"'{written}': message is full text; search it with message:word"
        )
    if not term.value and not term.prefix:
        raise QuerySyntaxError(token.value_position, 'empty quotes: put the words to find in "..."')
