"""The backend-neutral sequencer (``storage._sequencer``), pure: no database.

The property test drives it as a writer does (look up keys, plan, write or fail, accept) over
random groups with replays, failing jobs, refusing guards and unknown tenants, and checks every
answer, head and tree node against a brute-force model of the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import sha256

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailkeep.errors import ConflictError, NotFoundError, TrailkeepError
from trailkeep.merkle import PANGEA_LEGACY, RFC9162
from trailkeep.merkle.hasher import LogHasher
from trailkeep.model.event import NewEvent, StoredEvent
from trailkeep.storage._sequencer import GroupSequencer, Plan
from trailkeep.storage.base import Appended
from trailkeep.storage.tree import TreeHead, append_leaves

TENANTS = ("t1", "t2")


def _event(n: int, key: str | None) -> NewEvent:
    content: dict[str, object] = {"timestamp": "2026-01-01T00:00:00.000000Z", "n": n}
    if key is not None:
        content["idempotency_key"] = key
    return NewEvent(
        f"evt_{n}", "2026-01-01T00:00:00.000000Z", content, b"{}", {}, {},
        pangea_leaf=sha256(b"pangea" + str(n).encode()).digest(),
    )  # fmt: skip


def _leaf(tenant_id: str, seq: int, event: NewEvent) -> bytes:
    return sha256(f"{tenant_id}/{seq}/{event.id}".encode()).digest()


def _mth(hasher: LogHasher, leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1's MTH by its recursive definition (over leaf hashes)."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hasher.hash_children(_mth(hasher, leaves[:k]), _mth(hasher, leaves[k:]))


@dataclass
class _Log:
    """The model of one tenant's stored log."""

    events: list[NewEvent] = field(default_factory=list)
    keys: dict[str, int] = field(default_factory=dict)  # key -> seq
    nodes: dict[tuple[int, int], bytes] = field(default_factory=dict)
    pangea: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def leaves(self, tenant_id: str) -> list[bytes]:
        return [_leaf(tenant_id, seq, e) for seq, e in enumerate(self.events)]

    def stored(self, tenant_id: str, seq: int) -> StoredEvent:
        e = self.events[seq]
        return StoredEvent(tenant_id, seq, e.id, e.received_at, e.content, _leaf(tenant_id, seq, e))


def _seed(tenant_id: str, keys: list[str | None], counter: list[int]) -> tuple[_Log, TreeHead]:
    log = _Log()
    for key in keys:
        if key is not None and key in log.keys:
            continue
        counter[0] += 1
        if key is not None:
            log.keys[key] = len(log.events)
        log.events.append(_event(counter[0], key))
    head = TreeHead(0, ())
    if log.events:
        second = [e.pangea_leaf or b"" for e in log.events]
        head, nodes, pangea = append_leaves(head, log.leaves(tenant_id), second)
        for seq, leaf in enumerate(log.leaves(tenant_id)):
            log.nodes[(0, seq)] = leaf
            log.pangea[(0, seq)] = second[seq]
        log.nodes.update({(lv, i): h for lv, i, h in nodes})
        log.pangea.update({(lv, i): h for lv, i, h in pangea})
    return log, head


_KEYS = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "e"]))
_JOB = st.tuples(
    st.sampled_from((*TENANTS, "ghost")),
    st.lists(_KEYS, max_size=6),
    st.booleans(),  # its writes fail
)


@settings(max_examples=300, deadline=None)
@given(
    seeds=st.tuples(st.lists(_KEYS, max_size=9), st.lists(_KEYS, max_size=9)),
    jobs=st.lists(_JOB, max_size=10),
    refused=st.sets(st.sampled_from(TENANTS)),
    sees_own_writes=st.booleans(),
)
def test_random_groups_match_a_brute_force_log(
    seeds: tuple[list[str | None], list[str | None]],
    jobs: list[tuple[str, list[str | None], bool]],
    refused: set[str],
    sees_own_writes: bool,
) -> None:
    counter = [0]
    logs: dict[str, _Log] = {}
    heads: dict[str, TreeHead] = {}
    for tenant_id, keys in zip(TENANTS, seeds, strict=True):
        logs[tenant_id], heads[tenant_id] = _seed(tenant_id, keys, counter)
    committed = {t: dict(log.keys) for t, log in logs.items()}  # keys stored before the group
    guarded: list[tuple[str, int]] = []

    def guard(tenant_id: str, head: TreeHead) -> None:
        guarded.append((tenant_id, head.size))
        if tenant_id in refused:
            raise ConflictError("forked")

    sequencer = GroupSequencer(heads, _leaf, guard)
    for tenant_id, keys, fails in jobs:
        events = []
        for key in keys:
            counter[0] += 1
            events.append(_event(counter[0], key))
        # The model's answer, worked out before the sequencer's.
        log = logs.get(tenant_id)
        expected: list[tuple[int, str, bool]] | type[TrailkeepError]
        if log is None:
            expected = NotFoundError
        else:
            size = len(log.events)
            new: list[NewEvent] = []
            mine: dict[str, tuple[int, str]] = {}
            answer = []
            for e in events:
                key = e.idempotency_key
                if key is not None and key in mine:
                    answer.append((*mine[key], True))
                elif key is not None and key in log.keys:
                    seq = log.keys[key]
                    mine[key] = (seq, log.events[seq].id)
                    answer.append((*mine[key], True))
                else:
                    seq = size + len(new)
                    new.append(e)
                    if key is not None:
                        mine[key] = (seq, e.id)
                    answer.append((seq, e.id, False))
            expected = answer
            if new and tenant_id in refused:
                expected = ConflictError
        # The writer's side.
        guarded.clear()
        try:
            found = sequencer.lookup_keys(tenant_id, events)
            if log is None:
                stored = {}
            else:
                visible = log.keys if sees_own_writes else committed[tenant_id]
                stored = {k: log.stored(tenant_id, visible[k]) for k in found if k in visible}
            plan = sequencer.plan(tenant_id, events, stored)
        except TrailkeepError as exc:
            failed: type[TrailkeepError] | None = type(exc)
        else:
            failed = None
        if failed is not None:
            assert expected is failed
            continue
        assert not isinstance(expected, type)
        got = [(a.event.seq, a.event.id, a.replayed) for a in plan.results]
        assert got == expected
        assert guarded == ([(tenant_id, len(logs[tenant_id].events))] if plan.fresh else [])
        if fails:
            continue  # its writes failed: the backend does not accept the plan
        _apply(logs[tenant_id], tenant_id, events, plan)
        sequencer.accept(plan)

    changed = dict(sequencer.changed_heads())
    for tenant_id, log in logs.items():
        head = changed.get(tenant_id, heads[tenant_id])
        assert (tenant_id in changed) == (head.size != heads[tenant_id].size)
        assert head.size == len(log.events)
        if not log.events:
            continue
        leaves = log.leaves(tenant_id)
        second = [e.pangea_leaf or b"" for e in log.events]
        assert head.root() == _mth(RFC9162, leaves)
        assert head.pangea_root() == _mth(PANGEA_LEGACY, second)
        for table, tree_leaves, hasher in (
            (log.nodes, leaves, RFC9162),
            (log.pangea, second, PANGEA_LEGACY),
        ):
            # Exactly the complete subtrees, each right.
            complete = {
                (lv, i)
                for lv in range(len(tree_leaves).bit_length())
                for i in range(len(tree_leaves) >> lv)
            }
            assert set(table) == complete
            for (lv, i), h in table.items():
                assert h == _mth(hasher, tree_leaves[i << lv : (i + 1) << lv])


def _apply(log: _Log, tenant_id: str, events: list[NewEvent], plan: Plan) -> None:
    """What the backend writes: the new events and both trees' node rows (never twice)."""
    for n, (i, seq) in enumerate(plan.fresh):
        assert seq == len(log.events) == plan.head.size + n
        key = events[i].idempotency_key
        if key is not None:
            assert key not in log.keys  # the unique index would refuse it
            log.keys[key] = seq
            assert plan.claimed[key].seq == seq
        log.events.append(events[i])
    assert len(plan.claimed) == sum(1 for i, _ in plan.fresh if events[i].idempotency_key)
    for table, rows in ((log.nodes, plan.nodes), (log.pangea, plan.pangea_nodes)):
        for t, level, idx, h in rows:
            assert t == tenant_id
            assert (level, idx) not in table  # the primary key would refuse it
            table[(level, idx)] = h


def _sequencer(guard: list[tuple[str, int]] | None = None, **kw: object) -> GroupSequencer:
    def check(tenant_id: str, head: TreeHead) -> None:
        if guard is not None:
            guard.append((tenant_id, head.size))

    return GroupSequencer({"t1": TreeHead(0, ())}, _leaf, check, **kw)  # type: ignore[arg-type]


def test_a_plan_made_from_a_moved_head_is_refused() -> None:
    sequencer = _sequencer()
    first = sequencer.plan("t1", [_event(1, None)], {})
    second = sequencer.plan("t1", [_event(2, None)], {})  # made from the same head
    sequencer.accept(first)
    with pytest.raises(RuntimeError, match="fork"):
        sequencer.accept(second)
    assert [h.size for _, h in sequencer.changed_heads()] == [1]


def test_an_unaccepted_plan_leaves_the_head_and_its_keys() -> None:
    sequencer = _sequencer()
    failed = sequencer.plan("t1", [_event(1, "k")], {})
    assert failed.claimed.keys() == {"k"}
    assert sequencer.lookup_keys("t1", [_event(2, "k")]) == ["k"]
    retry = sequencer.plan("t1", [_event(2, "k")], {})
    assert retry.results[0] == Appended(retry.results[0].event, replayed=False)
    assert retry.results[0].event.seq == 0
    sequencer.accept(retry)
    assert sequencer.lookup_keys("t1", [_event(3, "k")]) == []
    replay = sequencer.plan("t1", [_event(3, "k")], {})
    assert replay.results[0].replayed
    assert replay.results[0].event.id == "evt_2"
    assert sequencer.changed_heads()[0][1].size == 1


def test_the_guard_sees_the_head_only_when_something_is_appended() -> None:
    seen: list[tuple[str, int]] = []
    sequencer = _sequencer(seen)
    sequencer.accept(sequencer.plan("t1", [_event(1, "k"), _event(2, None)], {}))
    assert seen == [("t1", 0)]
    sequencer.accept(sequencer.plan("t1", [_event(3, "k")], {}))  # a replay appends nothing
    sequencer.accept(sequencer.plan("t1", [], {}))
    assert seen == [("t1", 0)]
    sequencer.accept(sequencer.plan("t1", [_event(4, None)], {}))
    assert seen == [("t1", 0), ("t1", 2)]


def test_keys_compare_as_stored() -> None:
    """PostgreSQL stores NUL as U+FFFD: two keys it stores alike are one key, not a conflict."""

    def pg_text(key: str) -> str:
        return key.replace("\x00", "\ufffd")

    sequencer = _sequencer(stored_key=pg_text)
    events = [_event(1, "a\x00"), _event(2, "a\ufffd")]
    assert sequencer.lookup_keys("t1", events) == ["a\ufffd"]
    plan = sequencer.plan("t1", events, {})
    assert [(a.event.id, a.replayed) for a in plan.results] == [("evt_1", False), ("evt_1", True)]
    assert plan.claimed.keys() == {"a\ufffd"}


def test_without_a_leaf_function_no_tree_is_kept() -> None:
    sequencer = GroupSequencer({"t1": TreeHead(3, ())}, None, lambda t, h: None)
    plan = sequencer.plan("t1", [_event(1, None), _event(2, None)], {})
    assert plan.new_head.size == 5
    assert plan.new_head.frontier == ()
    assert plan.nodes == []
    assert plan.pangea_nodes == []
    assert [(a.event.seq, a.event.leaf_hash) for a in plan.results] == [(3, None), (4, None)]


def test_unknown_tenant() -> None:
    sequencer = _sequencer()
    assert not sequencer.knows("t2")
    with pytest.raises(NotFoundError):
        sequencer.plan("t2", [], {})
    sequencer.add_head("t2", TreeHead(7, ()))
    assert sequencer.head("t2").size == 7
    assert sequencer.changed_heads() == []
