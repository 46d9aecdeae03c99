"""The compiler: the exact SQL each dialect gets, and that no user text ever reaches it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings

from tests.query.strategies import query_texts, trees
from trailkeep.query.ast import Node, Term
from trailkeep.query.errors import QuerySyntaxError
from trailkeep.storage._compile import DialectName, compile_node, compile_query
from trailkeep.storage._dialects import PostgresDialect, SqliteDialect
from trailkeep.storage._fulltext import Fts5, TsVector
from trailkeep.storage._sql import SqlFragment

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FTS = "events.rowid IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)"
EACH = "EXISTS (SELECT 1 FROM json_each(CAST(body AS TEXT), ?) AS j WHERE typeof(j.key) <> 'text'"
PG_BODY = "convert_from(body, 'UTF8')::jsonb"
PG_PATH = f"jsonb_path_exists({PG_BODY}, %s::jsonpath, %s::jsonb)"
#: Every SQL string literal the compiler writes itself; anything else would be user text.
OUR_LITERALS = {"'text'", "'integer'", "'real'", "'null'", "'\\'", "'{a}'", "'simple'", "'UTF8'"}


def sqlite(text: str) -> SqlFragment:
    return compile_query(text, "sqlite", now=NOW)


def postgres(text: str) -> SqlFragment:
    return compile_query(text, "postgres", now=NOW)


class TestSqlite:
    """SQLite: indexed columns, json_each over the body, one FTS5 MATCH per text group."""

    @pytest.mark.parametrize(
        ("text", "sql", "params"),
        [
            pytest.param("error", FTS, ('"error"',), id="word"),
            pytest.param('"a b"', FTS, ('"a b"',), id="phrase"),
            pytest.param("tim*", FTS, ('"tim" *',), id="prefix"),
            pytest.param("a b", FTS, ('("a" AND "b")',), id="words-share-one-match"),
            pytest.param("a OR b", FTS, ('("a" OR "b")',), id="or-shares-one-match"),
            pytest.param(
                "(a OR b) message:c", FTS, ('(("a" OR "b") AND message : "c")',), id="nested-group"
            ),
            pytest.param(
                '"x"" OR 1"', FTS, ('("x" AND " OR 1")',), id="adjacent-quotes-are-two-phrases"
            ),
            pytest.param('"say \\"hi\\" NEAR"', FTS, ('"say ""hi"" NEAR"',), id="quotes-doubled"),
            pytest.param("-a", f"(({FTS}) IS NOT TRUE)", ('"a"',), id="not-word"),
            pytest.param(
                "a -b c",
                f"({FTS} AND (({FTS}) IS NOT TRUE))",
                ('("a" AND "c")', '"b"'),
                id="text-merged-in-first-place",
            ),
            pytest.param('"--"', "(1 = 0)", (), id="no-words-is-false"),
            pytest.param("action:login", "action = ?", ("login",), id="column"),
            pytest.param("actor.email:bob@x.io", "actor_email = ?", ("bob@x.io",), id="actor"),
            pytest.param("client_id:web", "client_id = ?", ("web",), id="alias"),
            pytest.param("action:doc.*", "action GLOB ?", ("doc.*",), id="column-prefix"),
            pytest.param("action:a[*?b*", "action GLOB ?", ("a[[][*][?]b*",), id="glob-escapes"),
            pytest.param("action:*", "action IS NOT NULL", (), id="column-exists"),
            pytest.param("action>m", "action > ?", ("m",), id="column-order"),
            pytest.param("seq>=100", "seq >= ?", (100,), id="seq"),
            pytest.param(
                "timestamp>now-1h", "ts > ?", ("2026-11-23T09:00:00.000000Z",), id="relative-time"
            ),
            pytest.param(
                "received_at<=2026-11-01",
                "received_at <= ?",
                ("2026-11-01T00:00:00.000000Z",),
                id="date",
            ),
            pytest.param("timestamp:2026-11*", "ts GLOB ?", ("2026-11*",), id="time-prefix"),
            pytest.param(
                'metadata.model:"gpt-4o \\"é\\""',
                f"(instr(body, ?) > 0 AND {EACH} AND ((j.type = 'text' AND j.value = ?))))",
                ('"gpt-4o \\"é\\""'.encode(), '$."metadata"."model"', 'gpt-4o "é"'),
                id="json-text",
            ),
            pytest.param(
                "metadata.n:500",
                f"{EACH} AND ((j.type = 'text' AND j.value = ?)"
                " OR (j.type IN ('integer', 'real') AND j.value = ?)))",
                ('$."metadata"."n"', "500", 500),
                id="json-number",
            ),
            pytest.param(
                "metadata.f:true",
                f"{EACH} AND ((j.type = 'text' AND j.value = ?) OR (j.type = ?)))",
                ('$."metadata"."f"', "true", "true"),
                id="json-literal",
            ),
            pytest.param(
                "metadata.n>1.5",
                f"{EACH} AND (j.type IN ('integer', 'real') AND j.value > ?))",
                ('$."metadata"."n"', 1.5),
                id="json-compare-number",
            ),
            pytest.param(
                "metadata.n>1e999",
                f"{EACH} AND (j.type IN ('integer', 'real') AND j.value > ?))",
                ('$."metadata"."n"', float("inf")),
                id="json-compare-huge-number",
            ),
            pytest.param(
                "metadata.s<=m",
                f"{EACH} AND (j.type = 'text' AND j.value <= ?))",
                ('$."metadata"."s"', "m"),
                id="json-compare-text",
            ),
            pytest.param(
                "actor.name:Al*",
                f"(instr(body, ?) > 0 AND {EACH} AND (j.type = 'text' AND j.value GLOB ?)))",
                (b'"Al', '$."actor"."name"', "Al*"),
                id="json-prefix",
            ),
            pytest.param(
                "metadata.x:*",
                "json_type(CAST(body AS TEXT), ?) <> 'null'",
                ('$."metadata"."x"',),
                id="json-exists",
            ),
            pytest.param(
                'metadata."a.b\'); --".c:*',
                "json_type(CAST(body AS TEXT), ?) <> 'null'",
                ('$."metadata"."a.b\'); --"."c"',),
                id="odd-keys-are-quoted-in-a-bound-path",
            ),
            pytest.param(
                "message:*",
                "json_type(CAST(body AS TEXT), ?) <> 'null'",
                ('$."message"',),
                id="message-exists",
            ),
            pytest.param(
                "-actor.id:u",
                "((actor_id = ?) IS NOT TRUE)",
                ("u",),
                id="negation-is-two-valued",
            ),
            pytest.param(
                "action:a OR b outcome:c",
                f"(action = ? OR ({FTS} AND outcome = ?))",
                ("a", '"b"', "c"),
                id="mixed",
            ),
        ],
    )
    def test_sql(self, text: str, sql: str, params: tuple[object, ...]) -> None:
        assert sqlite(text) == SqlFragment(sql, params)

    def test_configurable_names(self) -> None:
        dialect = SqliteDialect(body="e.body", full_text=Fts5(table="fts", key="e.rowid"))
        assert compile_query("a metadata.x:*", dialect) == SqlFragment(
            "(e.rowid IN (SELECT rowid FROM fts WHERE fts MATCH ?)"
            " AND json_type(e.body, ?) <> 'null')",
            ('"a"', '$."metadata"."x"'),
        )


class TestPostgres:
    """PostgreSQL: %s placeholders, jsonpath with bound vars, a weighted tsvector."""

    @pytest.mark.parametrize(
        ("text", "sql", "params"),
        [
            pytest.param(
                "error",
                "search_vector @@ phraseto_tsquery('simple', %s)",
                ("error",),
                id="word",
            ),
            pytest.param(
                'a "b c"',
                "search_vector @@ (phraseto_tsquery('simple', %s)"
                " && phraseto_tsquery('simple', %s))",
                ("a", "b c"),
                id="and",
            ),
            pytest.param(
                "a OR b",
                "search_vector @@ (phraseto_tsquery('simple', %s)"
                " || phraseto_tsquery('simple', %s))",
                ("a", "b"),
                id="or",
            ),
            pytest.param(
                "it's*",
                "search_vector @@ to_tsquery('simple', %s)",
                ("'it''s':*",),
                id="prefix-is-one-quoted-lexeme",
            ),
            pytest.param(
                "a\\\\b*",
                "search_vector @@ to_tsquery('simple', %s)",
                ("'a\\\\b':*",),
                id="prefix-backslash-escaped",
            ),
            pytest.param(
                "message:timeout",
                "ts_filter(search_vector, '{a}') @@ phraseto_tsquery('simple', %s)",
                ("timeout",),
                id="message-is-weight-a",
            ),
            pytest.param(
                "a message:b",
                "(search_vector @@ phraseto_tsquery('simple', %s)"
                " AND ts_filter(search_vector, '{a}') @@ phraseto_tsquery('simple', %s))",
                ("a", "b"),
                id="mixed-scopes",
            ),
            pytest.param(
                "-a",
                "((search_vector @@ phraseto_tsquery('simple', %s)) IS NOT TRUE)",
                ("a",),
                id="not",
            ),
            pytest.param("action:login", "action = %s", ("login",), id="column"),
            pytest.param(
                "action:50%_*", "action LIKE %s ESCAPE '\\'", ("50\\%\\_%",), id="like-escapes"
            ),
            pytest.param(
                "timestamp>=now-1d", "ts >= %s", ("2026-11-22T10:00:00.000000Z",), id="time"
            ),
            pytest.param("seq<5", "seq < %s", (5,), id="seq"),
            pytest.param(
                "metadata.model:gpt-4o",
                PG_PATH,
                ('$."metadata"."model" ? (@ == $s)', '{"s": "gpt-4o"}'),
                id="json-text",
            ),
            pytest.param(
                "metadata.n:-5e3",
                PG_PATH,
                ('$."metadata"."n" ? (@ == $s || @ == $n)', '{"s": "-5e3", "n": -5E+3}'),
                id="json-number",
            ),
            pytest.param(
                "metadata.x:null",
                PG_PATH,
                ('$."metadata"."x" ? (@ == $s || @ == $l)', '{"s": "null", "l": null}'),
                id="json-null",
            ),
            pytest.param(
                "metadata.n>500",
                PG_PATH,
                ('$."metadata"."n" ? (@ > $v)', '{"v": 500}'),
                id="json-compare-number",
            ),
            pytest.param(
                'metadata.s<"a\\"b"',
                PG_PATH,
                ('$."metadata"."s" ? (@ < $v)', '{"v": "a\\"b"}'),
                id="json-compare-text",
            ),
            pytest.param(
                'metadata."user agent":curl*',
                PG_PATH,
                ('$."metadata"."user agent" ? (@ starts with $s)', '{"s": "curl"}'),
                id="json-prefix",
            ),
            pytest.param(
                "metadata.a.b:*",
                f"jsonb_typeof({PG_BODY} #> %s) <> 'null'",
                (["metadata", "a", "b"],),
                id="json-exists-text-array-path",
            ),
        ],
    )
    def test_sql(self, text: str, sql: str, params: tuple[object, ...]) -> None:
        assert postgres(text) == SqlFragment(sql, params)

    def test_configurable_names(self) -> None:
        dialect = PostgresDialect(
            body="e.doc", full_text=TsVector(column="e.tsv", config="english")
        )
        assert compile_query("a metadata.x:*", dialect) == SqlFragment(
            "(e.tsv @@ phraseto_tsquery('english', %s) AND jsonb_typeof(e.doc #> %s) <> 'null')",
            ("a", ["metadata", "x"]),
        )


class TestCompileNode:
    """Hand-built trees get the parser's field checks, at the term's position."""

    def test_unknown_field(self) -> None:
        with pytest.raises(QuerySyntaxError, match=r"^at position 7: unknown field 'nope'"):
            compile_node(Term(("nope",), ":", "x", position=7))

    @pytest.mark.parametrize(
        "term",
        [
            pytest.param(Term(("seq",), ">", "x"), id="seq"),
            pytest.param(Term(("timestamp",), ">", "soon"), id="time"),
            pytest.param(Term(("timestamp",), ">", ""), id="empty-time"),
            pytest.param(Term(("timestamp",), ">", "now-9000y"), id="time-out-of-range"),
        ],
    )
    def test_bad_values(self, term: Term) -> None:
        with pytest.raises(QuerySyntaxError):
            compile_node(term, now=NOW)

    def test_time_relative_to_now(self) -> None:
        later = datetime(2027, 1, 1, tzinfo=UTC)
        assert compile_query("timestamp>now", now=later).params == ("2027-01-01T00:00:00.000000Z",)


def _placeholders(sql: str, dialect: DialectName) -> int:
    return sql.count("?") if dialect == "sqlite" else sql.count("%s")


class TestValuesAreAlwaysBound:
    """For any query, every value is a parameter: the SQL holds only our own literals."""

    @pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
    @settings(max_examples=200)
    @given(tree=trees)
    def test_trees(self, dialect: DialectName, tree: Node) -> None:
        fragment = compile_node(tree, dialect, now=NOW)
        assert _placeholders(fragment.sql, dialect) == len(fragment.params)
        assert set(re.findall(r"'[^']*'", fragment.sql)) <= OUR_LITERALS
        if dialect == "postgres":
            assert "%" not in fragment.sql.replace("%s", "")

    @pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
    @settings(max_examples=200)
    @given(text=query_texts)
    def test_text(self, dialect: DialectName, text: str) -> None:
        try:
            fragment = compile_query(text, dialect, now=NOW)
        except QuerySyntaxError:
            return
        assert _placeholders(fragment.sql, dialect) == len(fragment.params)
        assert set(re.findall(r"'[^']*'", fragment.sql)) <= OUR_LITERALS


class TestOrSharesOneParsePerPath:
    """OR'ed equality terms on one JSON path read that path once (one ``json_each`` or one
    jsonpath), however many terms there are; other paths and other terms keep their own."""

    @pytest.mark.parametrize(
        ("dialect", "reader"),
        [
            pytest.param("sqlite", "json_each(", id="sqlite"),
            pytest.param("postgres", "jsonb_path_exists(", id="postgres"),
        ],
    )
    @pytest.mark.parametrize(
        ("text", "reads"),
        [
            pytest.param("metadata.a:x OR metadata.a:y OR metadata.a:z", 1, id="one-path"),
            pytest.param("metadata.a:x OR metadata.b:y OR metadata.a:z", 2, id="two-paths"),
            pytest.param("metadata.a:2 OR metadata.a:1 OR metadata.a:true", 1, id="typed-values"),
            pytest.param("metadata.a:x metadata.a:y", 2, id="and-keeps-each"),
            pytest.param("metadata.a:x OR metadata.a:y*", 2, id="prefix-apart"),
        ],
    )
    def test_reads(self, dialect: DialectName, reader: str, text: str, reads: int) -> None:
        assert compile_query(text, dialect, now=NOW).sql.count(reader) == reads

    def test_byte_check_covers_every_string(self) -> None:
        fragment = compile_query("metadata.a:x OR metadata.a:y", "sqlite", now=NOW)
        assert fragment.params[:2] == (b'"x"', b'"y"')
        assert "((instr(body, ?) > 0 OR instr(body, ?) > 0) AND EXISTS" in fragment.sql

    def test_many_strings_skip_the_byte_check(self) -> None:
        """Past eight strings the byte checks cost more than the one parse they would save."""
        text = " OR ".join(f"metadata.a:v{i}" for i in range(9))
        fragment = compile_query(text, "sqlite", now=NOW)
        assert "instr(" not in fragment.sql
        assert fragment.sql.count("json_each(") == 1
