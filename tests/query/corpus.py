"""Thirty varied events and the exact ids each query must find, on every backend.

Backend-neutral on purpose: the SQLite end-to-end test runs these cases, and a backend's
contract suite can run the same ``CASES`` against its own store. Cases whose answer depends on
a backend's tokenizer (emails, diacritics) are kept out of ``CASES`` and tested per backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

__all__ = ["CASES", "EVENTS", "NOW", "ids"]

#: The clock of every case: relative times (``now-1h``) are read against it.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

_ALICE = {
    "id": "u-alice",
    "type": "user",
    "name": "Alice Liddell",
    "email": "alice@example.com",
    "role": "admin",
}
_BOB = {"id": "u-bob", "type": "user", "name": "Bob", "email": "bob@x.io"}
_AGENT = {"id": "agent-7", "type": "agent", "name": "Helper"}


def _event(n: int, action: str, **content: Any) -> dict[str, Any]:
    content.setdefault("timestamp", f"2026-11-20T00:{n:02d}:00.000000Z")
    content.setdefault("outcome", "unknown")
    return {"id": f"e{n:02d}", "action": action, **content}


#: Event content by id (``id`` here is the stored event id, not part of the content).
EVENTS: list[dict[str, Any]] = [
    _event(
        1,
        "login",
        category="users",
        outcome="success",
        actor=_ALICE,
        source={"ip": "10.0.0.1", "user_agent": "Mozilla/5.0", "client_id": "web"},
        message="User logged in",
        timestamp="2026-11-23T09:30:00.000000Z",
    ),
    _event(
        2,
        "login",
        category="users",
        outcome="failure",
        actor=_BOB,
        source={"ip": "10.0.0.2", "client_id": "web"},
        message="Invalid password for bob",
        timestamp="2026-11-23T09:45:00.000000Z",
    ),
    _event(
        3,
        "document.update",
        category="documents",
        outcome="success",
        actor=_ALICE,
        target={"id": "doc-1", "type": "document", "name": "Q3 Report"},
        old={"title": "Draft"},
        new={"title": "Q3 Report"},
        message="Updated the quarterly report",
        timestamp="2026-11-22T12:00:00.000000Z",
    ),
    _event(
        4,
        "document.delete",
        category="documents",
        outcome="failure",
        actor=_BOB,
        target={"id": "doc-2", "type": "document", "name": "Secrets"},
        message="Permission denied deleting document",
        timestamp="2026-11-22T13:00:00.000000Z",
    ),
    _event(
        5,
        "invoke",
        category="agents",
        outcome="success",
        actor=_AGENT,
        metadata={"model": "gpt-4o", "tokens_used": 1200, "tags": ["prod", "llm"]},
        message="Agent answered a question",
        timestamp="2026-11-21T08:00:00.000000Z",
    ),
    _event(
        6,
        "invoke",
        category="agents",
        outcome="failure",
        actor=_AGENT,
        metadata={"model": "gpt-4o-mini", "tokens_used": 300, "tags": ["dev"]},
        message="Agent timeout after 30s",
    ),
    _event(
        7,
        "invoke",
        category="agents",
        metadata={"model": "claude-3", "tokens_used": "500", "tags": []},
        message="Tool call completed",
    ),
    _event(
        8,
        "invoke",
        category="agents",
        metadata={"model": "gpt-4o", "tokens_used": 500},
        message="Exactly five hundred tokens",
    ),
    _event(
        9,
        "tool.call",
        category="tools",
        metadata={"flag": True, "user agent": "curl/8.0", "a.b": "dotted key"},
        message="curl request",
    ),
    _event(10, "tool.call", category="tools", metadata={"flag": False, "a.b": "other"}),
    _event(11, "tool.call", category="tools", metadata={"flag": "true"}),
    _event(
        12,
        "workflow.run",
        category="workflows",
        metadata={"nested": {"deep": "value-1", "level": {"n": 3}}},
    ),
    _event(13, "security.probe", message="x' OR 1=1 --"),
    _event(14, "security.probe", message='a" OR'),
    _event(15, "note", message="NEAR the end"),
    _event(16, "note", message="caret ^ and star * and NEAR(a b)"),
    _event(17, "note", message="Café crème"),
    _event(
        18,
        "login",
        category="users",
        actor={"id": "svc-backup", "type": "service"},
        message="Service account login",
        session_id="sess-1",
        request_id="req-1",
        trace_id="trace-abc",
    ),
    _event(19, "LOGIN", message="Uppercase action"),
    _event(20, "document.update", target={"type": "Document"}, message="Case check"),
    _event(
        21,
        "format_check",
        request_id="50%_off",
        metadata={"percent": "100%", "under_score": "a_b", "glob": "x*y?[z]", "back": "a\\b"},
    ),
    _event(
        22,
        "admin.user.create",
        category="users",
        actor={"id": "u-root", "role": "owner"},
        target={"id": "u-carol", "type": "user", "name": "Carol"},
        message="Created user carol",
    ),
    _event(23, "eval", metadata={"scores": [1, 5, 10]}),
    _event(24, "purchase", metadata={"price": 19.99, "neg": -5}),
    _event(25, "http.request", metadata={"code": 404}, message="Not found 404"),
    _event(26, "user.suspend", old={"status": "active"}, new={"status": "suspended"}),
    _event(
        27,
        "system.start",
        category="system",
        message="System started",
        timestamp="2026-11-01T00:00:00.000000Z",
    ),
    _event(
        28,
        "system.stop",
        category="system",
        message="System stopped",
        timestamp="2026-10-31T23:59:59.999999Z",
    ),
    _event(29, "null.test", metadata={"empty": None, "zero": 0}),
    _event(
        30,
        "export",
        source={"client_id": "cli"},
        metadata={"x-request-id": "rq-9"},
        message="Export requested by cli",
    ),
]

ALL = {event["id"] for event in EVENTS}


def ids(*numbers: int) -> set[str]:
    return {f"e{n:02d}" for n in numbers}


def _case(query: str, expected: set[str], case_id: str) -> Any:
    return pytest.param(query, expected, id=case_id)


#: (query, the exact ids it finds). Sequence numbers are 0-based: e01 has seq 0.
CASES = [
    # free text
    _case("login", ids(1, 2, 18, 19), "word-in-message-or-action"),
    _case("LOGGED", ids(1), "word-case-insensitive"),
    _case("agent", ids(5, 6), "word-in-message-and-actor"),
    _case('"quarterly report"', ids(3), "phrase"),
    _case('"report quarterly"', set(), "phrase-order-matters"),
    _case("quarter*", ids(3), "word-prefix"),
    _case("timeout OR denied", ids(4, 6), "or-of-words"),
    _case("agent -timeout", ids(5), "word-minus-word"),
    _case("gpt", ids(5, 6, 8), "metadata-values-are-free-text"),
    _case("suspended", ids(26), "new-values-are-free-text"),
    _case("1200", ids(5), "numbers-are-free-text"),
    _case('"--"', set(), "phrase-without-letters-matches-nothing"),
    _case('-"--"', ALL, "negated-word-without-letters-matches-all"),
    # injection attempts: text, never syntax
    _case('message:"x\' OR 1=1 --"', ids(13), "sql-injection-in-phrase"),
    _case('"x\' OR 1=1 --"', ids(13), "sql-injection-free-phrase"),
    _case('"a\\" OR"', ids(14), "escaped-quote-in-phrase"),
    _case("NEAR", ids(15, 16), "fts-near-is-a-word"),
    _case("near*", ids(15, 16), "fts-near-prefix"),
    _case('"NEAR(a b)"', ids(16), "fts-near-call-is-a-phrase"),
    _case("star*", ids(16, 27), "prefix-star"),
    _case('"^"', set(), "fts-caret-is-no-word"),
    _case('"caret ^ and"', ids(16), "fts-caret-inside-phrase"),
    _case('"\'; DROP TABLE events; --"', set(), "drop-table"),
    _case("action:\"login' OR '1'='1\"", set(), "sql-injection-in-field-value"),
    _case('metadata."a.b\'); --":x', set(), "sql-injection-in-metadata-key"),
    # exact fields
    _case("action:login", ids(1, 2, 18), "field-exact-case-sensitive"),
    _case("action:LOGIN", ids(19), "field-exact-upper"),
    _case("outcome:failure", ids(2, 4, 6), "outcome"),
    _case("actor.email:bob@x.io", ids(2, 4), "actor-email-column"),
    _case("actor.name:Bob", ids(2, 4), "actor-name-json"),
    _case('actor.name:"Alice Liddell"', ids(1, 3), "quoted-value-with-space"),
    _case("actor.role:admin", ids(1, 3), "actor-role-json"),
    _case("target.type:document", ids(3, 4), "target-type-case-sensitive"),
    _case("source.ip:10.0.0.1", ids(1), "source-ip"),
    _case("client_id:web", ids(1, 2), "client-id-alias"),
    _case("source.client_id:cli", ids(30), "source-client-id"),
    _case("source.user_agent:Mozilla*", ids(1), "source-user-agent-prefix"),
    _case("session_id:sess-1 request_id:req-1 trace_id:trace-abc", ids(18), "correlation"),
    _case("id:e07", ids(7), "id"),
    _case("message:timeout", ids(6), "message-word"),
    _case("message:login", ids(18), "message-only-not-action"),
    _case('message:"five hundred"', ids(8), "message-phrase"),
    _case("message:*", ALL - ids(10, 11, 12, 21, 23, 24, 26, 29), "message-exists"),
    # metadata and JSON
    _case("metadata.model:gpt-4o", ids(5, 8), "metadata-exact"),
    _case("metadata.model:gpt-4o*", ids(5, 6, 8), "metadata-prefix"),
    _case("metadata.model:GPT-4o", set(), "metadata-case-sensitive"),
    _case("metadata.tokens_used:500", ids(7, 8), "number-matches-number-and-string"),
    _case('metadata.tokens_used:"500"', ids(7, 8), "quoted-number-still-a-number"),
    _case("metadata.tokens_used>500", ids(5), "number-greater"),
    _case("metadata.tokens_used>=500", ids(5, 8), "number-at-least"),
    _case("metadata.tokens_used<500", ids(6), "number-less-strings-excluded"),
    _case("metadata.tokens_used<=1e3", ids(6, 8), "number-exponent"),
    _case("metadata.price>19.5", ids(24), "float"),
    _case("metadata.neg<0", ids(24), "negative"),
    _case("metadata.neg:-5", ids(24), "negative-exact"),
    _case("metadata.flag:true", ids(9, 11), "true-matches-bool-and-string"),
    _case("metadata.flag:false", ids(10), "false"),
    _case("metadata.empty:null", ids(29), "null"),
    _case("metadata.empty:*", set(), "null-does-not-exist"),
    _case("metadata.zero:*", ids(29), "zero-exists"),
    _case("metadata.zero:0", ids(29), "zero"),
    _case("metadata.tags:prod", ids(5), "array-element"),
    _case("metadata.tags:l*", ids(5), "array-element-prefix"),
    _case("metadata.scores>7", ids(23), "array-element-compare"),
    _case("metadata.scores:5", ids(23), "array-number"),
    _case("metadata.tags:*", ids(5, 6, 7), "array-exists-even-empty"),
    _case('metadata."user agent":curl/8.0', ids(9), "quoted-key-with-space"),
    _case('metadata."a.b":"dotted key"', ids(9), "quoted-key-with-dot"),
    _case("metadata.a.b:*", set(), "dots-are-nesting"),
    _case("metadata.x-request-id:rq-9", ids(30), "key-with-dashes"),
    _case("metadata.nested.deep:value-1", ids(12), "nested"),
    _case("metadata.nested.level.n>=3", ids(12), "nested-number"),
    _case("metadata.nested:value-1", set(), "objects-never-match-their-values"),
    _case("metadata.percent:100%*", ids(21), "like-percent-escaped"),
    _case("metadata.percent:1%*", set(), "percent-is-literal"),
    _case("metadata.under_score:a_*", ids(21), "underscore-escaped"),
    _case("metadata.under_score:ax*", set(), "underscore-is-literal"),
    _case('metadata.glob:"x*y?[z"*', ids(21), "glob-wildcards-escaped"),
    _case("metadata.glob:x?*", set(), "question-mark-is-literal"),
    _case('metadata.back:"a\\\\b"', ids(21), "backslash-value"),
    _case("old.title:Draft new.title:*Report", set(), "star-inside-is-literal"),
    _case('old.title:Draft new.title:"Q3 Report"', ids(3), "old-and-new"),
    _case("old.status:active", ids(26), "old"),
    _case("metadata.model>gpt", ids(5, 6, 8), "string-order"),
    _case("metadata.model>=h", set(), "string-order-none"),
    # time and sequence
    _case("timestamp>now-1h", ids(1, 2), "relative-time"),
    _case("timestamp>=2026-11-22", ids(1, 2, 3, 4), "date"),
    _case("timestamp<2026-11-01", ids(28), "before-date"),
    _case("timestamp>=2026-11-01 timestamp<2026-11-02", ids(27), "one-day"),
    _case("timestamp:2026-11-23T09:30:00Z", ids(1), "exact-time"),
    _case("timestamp:2026-11-22*", ids(3, 4), "time-prefix"),
    _case('timestamp>"2026-11-23 09:40"', ids(2), "quoted-time"),
    _case("received_at>=2026-11-22", ids(1, 2, 3, 4), "received-at"),
    _case("seq>27", ids(29, 30), "seq"),
    _case("seq:0", ids(1), "seq-exact"),
    _case("seq>=10 seq<12", ids(11, 12), "seq-range"),
    # boolean structure
    _case("action:login OR action:invoke", ids(1, 2, 5, 6, 7, 8, 18), "or"),
    _case("action:login outcome:failure", ids(2), "implicit-and"),
    _case("action:login AND outcome:failure", ids(2), "explicit-and"),
    _case("action:login -outcome:failure", ids(1, 18), "minus"),
    _case("action:login NOT outcome:failure", ids(1, 18), "not"),
    _case("-actor.email:bob@x.io action:login", ids(1, 18), "negation-keeps-missing-fields"),
    _case("action:login OR action:invoke outcome:failure", ids(1, 2, 6, 18), "and-binds-tighter"),
    _case("(action:login OR action:invoke) outcome:failure", ids(2, 6), "parentheses"),
    _case("NOT (action:login OR category:agents)", ALL - ids(1, 2, 5, 6, 7, 8, 18), "not-group"),
    _case("--action:login", ids(1, 2, 18), "double-negation"),
    _case("login OR action:invoke", ids(1, 2, 5, 6, 7, 8, 18, 19), "text-or-field"),
    _case("agent OR timeout OR category:users", ids(1, 2, 5, 6, 18, 22), "merged-text-in-or"),
    _case("(report OR denied) actor.email:bob@x.io", ids(4), "text-group-and-field"),
    _case('category:users -"logged in"', ids(2, 18, 22), "minus-phrase"),
    _case(
        "category:*", ALL - ids(13, 14, 15, 16, 17, 19, 20, 21, 23, 24, 25, 26, 29, 30), "exists"
    ),
    _case("-category:*", ids(13, 14, 15, 16, 17, 19, 20, 21, 23, 24, 25, 26, 29, 30), "missing"),
    _case("action:document.* actor.name:Alice*", ids(3), "column-prefix-and-json-prefix"),
    _case("action:Document.*", set(), "column-prefix-case-sensitive"),
    _case("action:format_c*", ids(21), "column-prefix-underscore"),
    _case("action:formatxc*", set(), "column-prefix-underscore-is-literal"),
    _case("request_id:50%*", ids(21), "column-prefix-percent"),
    _case("request_id:5%*", set(), "column-prefix-percent-is-literal"),
    _case("request_id:*", ids(18, 21), "column-exists"),
]
