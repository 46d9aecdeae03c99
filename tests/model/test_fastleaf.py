"""The C part (``trailkeep.model._fastleaf``) writes exactly the leaf DESIGN §3 defines.

Its reference here is the contract itself, spelled with the reference libraries: ``rfc8785``
for JCS, ``binascii`` for base64, ``hashlib`` for SHA-256. It must answer for every event of
the common case and return None for the rest (the caller then takes the exact path).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tempfile
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

try:
    from trailkeep.model import _fastleaf
except ImportError:  # pragma: no cover - reported by test_the_c_part_is_built
    _fastleaf = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(_fastleaf is None, reason="the C part was not built")

MAX_SAFE_INTEGER = 2**53 - 1
#: The canonical base64 of 16 bytes: 22 characters whose last carries 2 bits, then "==".
CANONICAL_SALT = re.compile(r"[A-Za-z0-9+/]{21}[AQgw]==")
RECEIVED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", re.ASCII)
PLAIN_ID = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but quote and backslash
SALT_CHARS = 24
EVENT_ID = "evt_01JDAB3K9Q7M2X5V8N4R6T0WYZ"
WHEN = "2026-11-23T10:00:05.123456Z"
SALT = base64.b64encode(bytes(range(16))).decode()


def test_the_c_part_is_built() -> None:
    """The development install compiles it (setup.py); without it verification is slower."""
    assert _fastleaf is not None, "trailkeep.model._fastleaf missing: run scripts/bootstrap"


def commitment(salt: Any, value: Any) -> str | None:
    """hex(SHA-256(salt ‖ JCS(value))), or None where the C part must decline."""
    if type(salt) is not str or not CANONICAL_SALT.fullmatch(salt):
        return None
    if type(value) not in (str, bool, int) or (
        type(value) is int and abs(value) > MAX_SAFE_INTEGER
    ):
        return None
    try:
        encoded = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        return None  # a lone surrogate
    return hashlib.sha256(binascii.a2b_base64(salt, strict_mode=True) + encoded).hexdigest()


def reference(
    fields: dict[str, tuple[Any, Any]], event_id: Any, received_at: Any, seq: Any, tenant: str
) -> bytes | None:
    """The leaf hash of DESIGN §3, version 1, or None where the C part must decline."""
    commitments = {path: commitment(salt, value) for path, (salt, value) in fields.items()}
    if None in commitments.values():
        return None
    if type(event_id) is not str or not PLAIN_ID.fullmatch(event_id):
        return None
    if type(received_at) is not str or not RECEIVED_AT.fullmatch(received_at):
        return None
    if type(seq) is not int or not 0 <= seq <= MAX_SAFE_INTEGER:
        return None
    document: dict[str, Any] = {
        "v": 1,
        "tenant_id": tenant,
        "seq": seq,
        "id": event_id,
        "received_at": received_at,
        "commitments": commitments,
    }
    return hashlib.sha256(b"\x00" + rfc8785.dumps(document)).digest()


def native(
    fields: dict[str, tuple[Any, Any]],
    event_id: Any,
    received_at: Any,
    seq: Any,
    tenant: str,
    expected: Any,
) -> bytes | None:
    """``_fastleaf.leaf`` called as evidence.py calls it: keys in JCS (UTF-16) order."""
    paths = sorted(fields, key=lambda p: p.encode("utf-16-be"))
    keys = tuple(orjson.dumps(p).decode() for p in paths)
    salts = tuple(fields[p][0] for p in paths)
    values = tuple(fields[p][1] for p in paths)
    tenant_json = orjson.dumps(tenant).decode()
    return _fastleaf.leaf(keys, salts, values, event_id, received_at, seq, tenant_json, expected)


def candidate(
    fields: dict[str, tuple[Any, Any]], event_id: Any, received_at: Any, seq: Any, tenant: str
) -> bytes | None:
    """The leaf a C part that skipped its checks would compute: what it must not return when
    the reference declines. None where even that has no bytes to write."""
    commitments = {}
    for path, (salt, value) in fields.items():
        try:  # not strict: spare bits, junk, any length; or the first 22 characters alone
            raw = binascii.a2b_base64(salt if len(salt) != SALT_CHARS else salt[:22] + "==")
            # an int of any size, as Python writes it
            encoded = str(value).encode() if type(value) is int else rfc8785.dumps(value)
        except (binascii.Error, TypeError, ValueError, rfc8785.CanonicalizationError):
            return None
        commitments[path] = hashlib.sha256(raw + encoded).hexdigest()
    if not all(isinstance(x, str) for x in (event_id, received_at)) or not isinstance(seq, int):
        return None
    keys = sorted(commitments, key=lambda p: p.encode("utf-16-be"))
    text = ",".join(f'{orjson.dumps(p).decode()}:"{commitments[p]}"' for p in keys)
    text = (
        f'\x00{{"commitments":{{{text}}},"id":"{event_id}","received_at":"{received_at}",'
        f'"seq":{int(seq)},"tenant_id":{orjson.dumps(tenant).decode()},"v":1}}'
    )
    try:
        return hashlib.sha256(text.encode()).digest()
    except UnicodeEncodeError:
        return None


def check(
    fields: dict[str, tuple[Any, Any]],
    event_id: Any = EVENT_ID,
    received_at: Any = WHEN,
    seq: Any = 7,
    tenant: str = "acme",
) -> bytes | None:
    """The C part returns the reference leaf given its hex, and None given any other hex,
    and None for an event the reference declines even given the hex it would then compute."""
    leaf = reference(fields, event_id, received_at, seq, tenant)
    if leaf is None:
        unchecked = candidate(fields, event_id, received_at, seq, tenant)
        expected = "0" * 64 if unchecked is None else unchecked.hex()
        assert native(fields, event_id, received_at, seq, tenant, expected) is None
        return None
    good = leaf.hex()
    assert native(fields, event_id, received_at, seq, tenant, good) == leaf
    for wrong in (good.upper(), good[:-1] + ("0" if good[-1] != "0" else "1"), "0" * 64):
        if wrong != good:
            assert native(fields, event_id, received_at, seq, tenant, wrong) is None
    return leaf


paths = st.text(st.characters(exclude_categories=["Cs"]), max_size=10)
salt_texts = st.one_of(
    st.binary(min_size=16, max_size=16).map(lambda b: base64.b64encode(b).decode()),
    st.text(alphabet="ABIQgw+/=az09", min_size=22, max_size=25),  # near misses
    st.text(max_size=26),
    st.integers(),
)
values = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(max_codepoint=0x7F)),  # escapes: controls, quote, backslash
    st.sampled_from(["\ud800", "a\udfff", "\x00\x1f\x7f\u2028", '"\\/\b\f\n\r\t']),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.sampled_from([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 2**53, -(2**53), 0, -1]),
    st.none(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@needs_c
class TestLeaf:
    @given(
        fields=st.dictionaries(paths, st.tuples(salt_texts, values), max_size=6),
        event_id=st.text(max_size=30) | st.just(EVENT_ID) | st.integers(),
        received_at=st.just(WHEN) | st.text(alphabet="0123456789-T:.Z", min_size=26, max_size=28),
        seq=st.integers(-3, 2**54) | st.sampled_from([True, 7.0, "7", None]),
        tenant=st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    )
    def test_matches_the_contract(
        self, fields: dict[str, Any], event_id: Any, received_at: Any, seq: Any, tenant: str
    ) -> None:
        check(fields, event_id, received_at, seq, tenant)

    @given(
        salts=st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=20),
        value=st.text() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | st.booleans(),
        seq=st.integers(0, MAX_SAFE_INTEGER),
    )
    def test_answers_the_common_case(self, salts: list[bytes], value: Any, seq: int) -> None:
        """Every well-formed event without a lone surrogate gets its leaf (not a quiet None)."""
        fields = {f"k{n}": (base64.b64encode(s).decode(), value) for n, s in enumerate(salts)}
        encodable = not isinstance(value, str) or not re.search("[\ud800-\udfff]", value)
        assert (check(fields, seq=seq) is not None) == encodable

    @given(
        raw=st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=8),
        value=values,
        seq=st.integers(0, MAX_SAFE_INTEGER),
    )
    def test_packed_salts_and_raw_hash(self, raw: list[bytes], value: Any, seq: int) -> None:
        """A database row's form (salts packed in one bytes, the hash as 32 bytes) gets the
        same answer as the wire form, and None for a wrong hash or a wrong salt length."""
        fields = {f"k{n}": (base64.b64encode(s).decode(), value) for n, s in enumerate(raw)}
        leaf = check(fields, seq=seq)
        keys = tuple(orjson.dumps(f"k{n}").decode() for n in range(len(raw)))
        values_ = (value,) * len(raw)

        def packed(salts: bytes, expected: Any) -> bytes | None:
            args = (keys, salts, values_, EVENT_ID, WHEN, seq, '"acme"', expected)
            return _fastleaf.leaf(*args)

        good = leaf if leaf is not None else bytes(32)
        assert packed(b"".join(raw), good) == leaf
        assert packed(b"".join(raw), good.hex()) == leaf
        wrong = bytes([good[0] ^ 1]) + good[1:]
        assert packed(b"".join(raw), wrong) is None
        assert packed(b"".join(raw)[:-1], good) is None
        assert packed(b"".join(raw) + b"x", good) is None
        assert packed(b"".join(raw), good[:31]) is None

    def test_every_escape(self) -> None:
        text = "".join(map(chr, range(0x80))) + "é😀\u2028"
        assert check({"message": (SALT, text)}) is not None

    def test_a_large_event(self) -> None:
        """Past the 2 KiB kept on the stack, for a value and for the leaf text."""
        fields = {f"metadata.k{n}": (SALT, "\x01" * 1000 * n) for n in range(40)}
        assert check(fields) is not None

    @pytest.mark.parametrize(
        ("value", "answers"),
        [
            (MAX_SAFE_INTEGER, True),
            (-MAX_SAFE_INTEGER, True),
            (2**53, False),
            (-(2**53), False),
            (2**63 - 1, False),
            (-(2**63), False),
            (2**64, False),
            (-1, True),
            (True, True),
            (1.0, False),
            (None, False),
        ],
    )
    def test_integers_within_safe_range(self, value: Any, answers: bool) -> None:
        """JCS has no form for an int beyond 2**53 - 1: the exact path rejects it."""
        assert (check({"n": (SALT, value)}) is not None) is answers
        as_seq = answers and type(value) is int and value >= 0  # True is no seq
        assert (check({"n": (SALT, "v")}, seq=value) is not None) is as_seq

    @pytest.mark.parametrize(
        ("salt", "answers"),
        [
            ("A" * 21 + "w==", True),
            ("A" * 21 + "B==", False),  # spare bits set: decodes, but not the canonical text
            ("A" * 21 + "I==", False),  # 8: a spare bit that a 3-bit mask would miss
            ("A" * 21 + "x==", False),
            ("A" * 22 + "=", False),
            ("A" * 22 + "===", False),
            ("A" * 22 + "=A", False),
            ("A" * 22 + "A=", False),
            ("A" * 24, False),
            ("A" * 21 + "-==", False),  # urlsafe alphabet
            ("A" * 21 + "\u00c0==", False),
        ],
    )
    def test_only_canonical_salts(self, salt: str, answers: bool) -> None:
        assert (check({"action": (salt, "v")}) is not None) is answers

    @pytest.mark.parametrize(
        ("event_id", "received_at", "answers"),
        [
            ("evt 1 ~!#$%&'()*+,-./:;<=>?@[]^_`{|}", WHEN, True),
            ('evt"1', WHEN, False),
            ("evt\\1", WHEN, False),
            ("evt\x7f", WHEN, False),
            ("evt\x1f", WHEN, False),
            ("évt", WHEN, False),  # the Python path takes non-ASCII ids
            (EVENT_ID, "2026-11-23T10:00:05.123456", False),
            (EVENT_ID, "2026-11-23T10:00:05.123456+00:00", False),
            (EVENT_ID, "2026-11-23 10:00:05.123456Z", False),
            (EVENT_ID, "\uff12026-11-23T10:00:05.123456Z", False),
            (EVENT_ID, "2026-11-23T10:00:05.1234567Z", False),
            (EVENT_ID, "2026-11-23T10:00:05.12345:Z", False),  # the character after "9"
            (EVENT_ID, "2026-11-23T10:00:05.12345/Z", False),  # ... and before "0"
        ],
    )
    def test_positional_fields(self, event_id: str, received_at: str, answers: bool) -> None:
        leaf = check({"action": (SALT, "v")}, event_id=event_id, received_at=received_at)
        assert (leaf is not None) is answers

    @given(st.dictionaries(paths, values, max_size=8), st.data())
    def test_commit_matches_the_contract(self, fields: dict[str, Any], data: st.DataObject) -> None:
        order = data.draw(st.permutations(list(fields)))
        pool = data.draw(st.binary(min_size=16 * len(order), max_size=16 * len(order)))
        salts = {p: pool[16 * n : 16 * n + 16] for n, p in enumerate(order)}
        expected = {p: commitment(base64.b64encode(salts[p]).decode(), fields[p]) for p in order}
        both = _fastleaf.commit(order, fields, pool)
        if None in expected.values():
            assert both is None
            return
        assert both is not None
        assert list(both[0].items()) == list(salts.items())
        assert list(both[1]) == order
        assert {p: c.hex() for p, c in both[1].items()} == expected

    def test_commitments_about_one_block(self) -> None:
        """A commitment whose salt and value fit one SHA-256 block (<= 55 bytes) is compressed
        by itself, a longer one as usual: both are hashlib's, on each side of the edge."""
        for size in range(64):
            value = "v" * size
            pool = bytes(range(16))
            expected = commitment(base64.b64encode(pool).decode(), value)
            both = _fastleaf.commit(["metadata.x"], {"metadata.x": value}, pool)
            assert both is not None
            assert both[1]["metadata.x"].hex() == expected, size

    @given(
        st.lists(
            st.tuples(
                st.text(max_size=6) | st.sampled_from(["a", "b", "a.b"]),
                st.binary(min_size=31, max_size=33),
            ),
            max_size=6,
        ),
        st.just(EVENT_ID) | st.text(max_size=8),
        st.just(WHEN) | st.text(alphabet="0123456789-T:.Z", min_size=27, max_size=27),
    )
    def test_prefix_matches_the_contract(
        self, items: list[tuple[str, bytes]], event_id: str, received_at: str
    ) -> None:
        commitments = dict(items)
        paths = list(commitments)
        common = (
            all(PLAIN_ID.fullmatch(p) for p in paths)
            and paths == sorted(set(paths))
            and all(len(c) == 32 for c in commitments.values())
            and PLAIN_ID.fullmatch(event_id)
            and RECEIVED_AT.fullmatch(received_at)
        )
        head = _fastleaf.prefix(commitments, event_id, received_at)
        if not common:
            assert head is None
            return
        document = {
            "commitments": {p: c.hex() for p, c in commitments.items()},
            "id": event_id,
            "received_at": received_at,
        }
        assert head == rfc8785.dumps(document)[:-1] + b',"seq":'

    def test_prefix_of_a_dict_with_holes(self) -> None:
        """A dict whose first item was deleted: its items alone, in their order."""
        commitments = {"gone": bytes(32), "a": bytes(32), "b": bytes(32)}
        del commitments["gone"]
        head = _fastleaf.prefix(commitments, EVENT_ID, WHEN)
        assert head is not None
        assert head.startswith(b'{"commitments":{"a":"' + b"0" * 64 + b'","b":"')
        assert (
            head
            == rfc8785.dumps(
                {"commitments": {"a": "0" * 64, "b": "0" * 64}, "id": EVENT_ID, "received_at": WHEN}
            )[:-1]
            + b',"seq":'
        )

    @pytest.mark.parametrize(
        ("args", "error"),
        [
            pytest.param(({},), TypeError, id="one-argument"),
            pytest.param(([("a", bytes(32))], EVENT_ID, WHEN), TypeError, id="not-a-dict"),
        ],
    )
    def test_prefix_misuse_raises(self, args: tuple[Any, ...], error: type[Exception]) -> None:
        with pytest.raises(error):
            _fastleaf.prefix(*args)

    @pytest.mark.parametrize(
        ("args", "error"),
        [
            pytest.param(((),), TypeError, id="one-argument"),
            pytest.param((("a",), {"a": "v"}, bytes(16)), TypeError, id="paths-a-tuple"),
            pytest.param((["a"], [("a", "v")], bytes(16)), TypeError, id="values-not-a-dict"),
            pytest.param((["a"], {"a": "v"}, bytearray(16)), TypeError, id="pool-a-bytearray"),
            pytest.param((["a"], {"a": "v"}, bytes(15)), ValueError, id="short-pool"),
            pytest.param((["a"], {"a": "v"}, bytes(32)), ValueError, id="long-pool"),
            pytest.param((["b"], {"a": "v"}, bytes(16)), KeyError, id="path-without-value"),
            pytest.param(([["a"]], {"a": "v"}, bytes(16)), TypeError, id="unhashable-path"),
        ],
    )
    def test_commit_misuse_raises(self, args: tuple[Any, ...], error: type[Exception]) -> None:
        with pytest.raises(error):
            _fastleaf.commit(*args)

    @pytest.mark.parametrize(
        ("args", "error"),
        [
            pytest.param(((), (), ()), TypeError, id="three-arguments"),
            pytest.param(
                ([], (), (), EVENT_ID, WHEN, 1, '"a"', "0" * 64), TypeError, id="keys-a-list"
            ),
            pytest.param(
                ((), (), (), EVENT_ID, WHEN, 1, b"a", "0" * 64), TypeError, id="tenant-bytes"
            ),
            pytest.param(
                (('"a"',), (), (), EVENT_ID, WHEN, 1, '"a"', "0" * 64), ValueError, id="fewer-salts"
            ),
            pytest.param(
                ((b"a",), (SALT,), ("v",), EVENT_ID, WHEN, 1, '"a"', "0" * 64),
                TypeError,
                id="key-bytes",
            ),
        ],
    )
    def test_misuse_raises(self, args: tuple[Any, ...], error: type[Exception]) -> None:
        with pytest.raises(error):
            _fastleaf.leaf(*args)


@needs_c
class TestClimb:
    """``climb``: every level of a subtree, as RFC 9162 (and Pangea's tree) define a node."""

    @given(
        leaves=st.integers(0, 7).flatmap(
            lambda k: st.lists(st.binary(min_size=32, max_size=32), min_size=2**k, max_size=2**k)
        ),
        prefix=st.booleans(),
    )
    def test_matches_the_contract(self, leaves: list[bytes], prefix: bool) -> None:
        head = b"\x01" if prefix else b""
        want, row = [], leaves
        while len(row) > 1:
            row = [
                hashlib.sha256(head + a + b).digest()
                for a, b in zip(row[::2], row[1::2], strict=True)
            ]
            want.append(b"".join(row))
        assert _fastleaf.climb(b"".join(leaves), prefix) == want

    @pytest.mark.parametrize(
        ("leaves", "error"),
        [
            pytest.param(b"", ValueError, id="none"),
            pytest.param(bytes(31), ValueError, id="short"),
            pytest.param(bytes(96), ValueError, id="three"),
            pytest.param([bytes(32)], TypeError, id="a-list"),
        ],
    )
    def test_misuse_raises(self, leaves: Any, error: type[Exception]) -> None:
        with pytest.raises(error, match="climb"):
            _fastleaf.climb(leaves, True)


@needs_c
class TestSha256Pair:
    """``sha256_pair``: two one-block messages hashed in lockstep (the commitments of a row, on
    a CPU with SHA extensions) give SHA-256's digests, whatever their lengths."""

    @pytest.mark.skipif(
        _fastleaf is None or not _fastleaf.SHA256_PAIRS, reason="no SHA extensions on this CPU"
    )
    @given(a=st.binary(max_size=55), b=st.binary(max_size=55))
    def test_matches_hashlib(self, a: bytes, b: bytes) -> None:
        assert _fastleaf.sha256_pair(a, b) == (
            hashlib.sha256(a).digest(),
            hashlib.sha256(b).digest(),
        )

    @pytest.mark.skipif(
        _fastleaf is None or not _fastleaf.SHA256_PAIRS, reason="no SHA extensions on this CPU"
    )
    def test_every_length_of_a_block(self) -> None:
        """The padding's edge: 0, 55 (the longest one-block message) and each between."""
        for n in range(56):
            a, b = bytes(range(n)), bytes(range(55 - n, 0, -1))[: 55 - n]
            assert _fastleaf.sha256_pair(a, b) == (
                hashlib.sha256(a).digest(),
                hashlib.sha256(b).digest(),
            )

    @pytest.mark.parametrize(
        "args",
        [
            pytest.param((bytes(56), b""), id="past-one-block"),
            pytest.param(("a", b""), id="str"),
            pytest.param((b"",), id="one"),
        ],
    )
    def test_misuse_raises(self, args: tuple[Any, ...]) -> None:
        with pytest.raises(ValueError, match="sha256_pair"):
            _fastleaf.sha256_pair(*args)


_TEXT = st.none() | st.sampled_from(["a", "b", "\u00e9t\u00e9", "", "x" * 600, "\ud800"])
_ODD = st.integers(0, 3) | st.binary(max_size=2)
_TS = (
    st.none()
    | _ODD
    | st.sampled_from(
        [
            "2026-11-23T10:00:05.123456Z",
            "2026-11-23T11:59:00Z",
            "2026-11-24",
            "",
            "2026-11-2\u00e9T1",
        ]
    )
)


@needs_c
class TestTally:
    """``Tally``: the rollup recount of ``RollupTally`` (its Python counting the reference),
    whatever the columns hold; what it declines comes back and is counted in Python."""

    @given(
        rows=st.lists(
            st.tuples(_TS, *[_TEXT | _ODD if i % 4 == 0 else _TEXT for i in range(14)]),
            max_size=40,
        ),
        chunk=st.integers(1, 7),
    )
    def test_same_counts(self, rows: list[tuple[Any, ...]], chunk: int) -> None:
        from trailkeep.service.audit._rollups import RollupTally

        python, native = RollupTally(native=False), RollupTally()
        for i in range(0, len(rows), chunk):
            python.add(rows[i : i + chunk])
            native.add(rows[i : i + chunk])
        expected = python.expected()
        assert native.expected() == expected
        assert native.matches(expected)
        if expected:
            key = next(iter(expected))
            assert not native.matches({**expected, key: expected[key] + 1})
            assert not native.matches({k: n for k, n in expected.items() if k != key})
        assert not native.matches({**expected, ("action", "2026-11-23T10", "nope"): 1})

    def test_more_keys_than_its_recent_table(self) -> None:
        """Past the 4,096 keys the C tally keeps in its small table before moving them into
        the whole one, in hours that come back after others: the same counts as Python's."""
        from trailkeep.service.audit._rollups import RollupTally

        python, native = RollupTally(native=False), RollupTally()
        rows = [
            (
                f"2026-11-23T1{(i * 7) % 5}:00:00Z",
                *(f"actor-{i % 3001}" if c == 3 else f"v{(i + c) % 3}" for c in range(14)),
            )
            for i in range(12_000)
        ]
        for i in range(0, len(rows), 1000):
            python.add(rows[i : i + 1000])
            native.add(rows[i : i + 1000])
        expected = python.expected()
        assert len(expected) > 3 * 4096
        assert native.expected() == expected
        assert native.matches(expected)
        last = max(expected)
        assert not native.matches({**expected, last: expected[last] + 1})

    def test_misuse_raises(self) -> None:
        with pytest.raises(ValueError, match="groups"):
            _fastleaf.Tally(0, "_hour", ())
        with pytest.raises(ValueError, match="columns < 15"):
            _fastleaf.Tally(0, "_hour", ((("action", 99),),))
        with pytest.raises(TypeError):
            _fastleaf.Tally(0, "_hour", [])


@needs_c
def test_sqlite_rows_hashes(tmp_path: Any) -> None:
    """``SQLiteRows.hashes``: a level's range as one bytes, or b"" unless each node is there
    once with 32 bytes, in order (its query is an aggregate, ``trailkeep_hashes``)."""
    import sqlite3

    path = tmp_path / "nodes.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE n (tenant_id TEXT, level INT, idx INT, hash BLOB)")
    nodes = [hashlib.sha256(bytes([i])).digest() for i in range(8)]
    conn.executemany("INSERT INTO n VALUES ('a', 1, ?, ?)", list(enumerate(nodes)))
    where = " FROM n WHERE tenant_id = ? AND level = ? AND idx >= ? AND idx < ?"
    select = "SELECT trailkeep_hashes(idx, hash)" + where
    rows = "SELECT " + ", ".join(["NULL"] * 24) + " WHERE ? AND ? AND ?"
    # tree 1: the rows in descending order, and a plain query (not the aggregate)
    reader = _fastleaf.SQLiteRows(
        str(path),
        rows,
        None,
        select,
        "SELECT trailkeep_hashes(idx, hash) FROM (SELECT *" + where + " ORDER BY idx DESC)",
    )
    plain = _fastleaf.SQLiteRows(str(path), rows, None, "SELECT hash" + where, None)
    try:
        assert reader.hashes(1, "a", 1, 2, 6) == b""  # out of order: not vouched for
        assert reader.hashes(1, "a", 1, 2, 3) == nodes[2]
        assert plain.hashes(0, "a", 1, 2, 3) == b""  # not the aggregate: no answer
        assert reader.hashes(0, "a", 1, 2, 6) == b"".join(nodes[2:6])
        assert reader.hashes(0, "a", 1, 6, 6) == b""  # an empty range: nothing to compare
        assert reader.hashes(0, "a", 1, 4, 9) == b""  # one past the stored nodes
        assert reader.hashes(0, "b", 1, 0, 2) == b""
        conn.execute("UPDATE n SET hash = x'00' WHERE idx = 3")
        assert reader.hashes(0, "a", 1, 2, 4) == b""
        assert reader.hashes(0, "a", 1, 4, 6) == b"".join(nodes[4:6])
        conn.execute("INSERT INTO n VALUES ('a', 1, 5, ?)", (nodes[5],))
        assert reader.hashes(0, "a", 1, 4, 6) == b""  # a node twice
        with pytest.raises(ValueError, match="no such query"):
            reader.hashes(2, "a", 1, 0, 1)
    finally:
        reader.close()
        plain.close()
        conn.close()


#: Values SQLite's text columns hold (no lone surrogate: the C tally declines it anyway).
_STORED = st.none() | st.sampled_from(["a", "b", "\u00e9t\u00e9", "", "x" * 600])


@needs_c
@settings(deadline=None, max_examples=40)  # a database file per example
@given(
    rows=st.lists(st.tuples(_TS, *[_STORED for _ in range(14)]), min_size=1, max_size=30),
    change=st.sampled_from(
        ["none", "more", "less", "gone", "extra", "zero", "blob", "dim", "last", "middle"]
    ),
)
def test_sqlite_rows_rollups_match(rows: list[tuple[Any, ...]], change: str) -> None:
    """``SQLiteRows.rollups_match``: the stored rollup rows (n != 0) against a C tally, as
    ``Tally.matches`` judges the same rows read into a dict; any difference is one."""
    import sqlite3

    from trailkeep.service.audit._rollups import RollupTally

    tally = RollupTally()
    tally.add(rows)
    native = tally.whole
    assert native is not None
    expected = tally.expected()
    stored = [(d, p, v, n) for (d, p, v), n in sorted(expected.items())]
    key = stored[0]
    if change == "more":
        stored[0] = (*key[:3], key[3] + 1)
    elif change == "less":
        stored[0] = (*key[:3], key[3] - 1)
    elif change == "gone":
        del stored[0]
    elif change == "extra":
        stored.append(("action", "2026-11-23T10", "\u00e9 nope", 1))
    elif change == "zero":
        stored.append(("action", "2026-11-23T10", "\u00e9 nope", 0))  # left out, as none
    elif change == "blob":
        stored[0] = (key[0], key[1], key[2].encode(), key[3])
    elif change == "dim":
        stored[0] = ("actor.nope", *key[1:])
    elif change == "last":  # among the last rows, compared after the statement's end
        stored[-1] = (*stored[-1][:3], stored[-1][3] + 1)
    elif change == "middle":
        at = len(stored) // 2
        stored[at] = (*stored[at][:3], stored[at][3] - 1)
    # the same rows as a dict (what audit_rollups reads): the reference answer
    as_dict = {(d, p, v): n for d, p, v, n in stored if n != 0}
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/rollups.db"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("CREATE TABLE f (tenant_id TEXT, dim TEXT, period TEXT, value TEXT, n INT)")
        conn.executemany("INSERT INTO f VALUES ('a', ?, ?, ?, ?)", stored)
        conn.execute("INSERT INTO f VALUES ('b', 'action', '2026-11-23', 'x', 1)")
        where = " FROM f WHERE tenant_id = ? AND n <> 0"
        rows_sql = "SELECT " + ", ".join(["NULL"] * 24) + " WHERE ? AND ? AND ?"
        # the rows as the query's own, or each given to the reader's aggregate
        readers = [
            _fastleaf.SQLiteRows(path, rows_sql, rollups="SELECT dim, period, value, n" + where),
            _fastleaf.SQLiteRows(
                path, rows_sql, rollups="SELECT trailkeep_rollups(dim, period, value, n)" + where
            ),
        ]
        try:
            for reader in readers:
                answer = reader.rollups_match("a", native)
                assert answer is (change in ("none", "zero"))
                if change != "blob":
                    assert answer is native.matches(as_dict)
                assert reader.rollups_match("a", native) is answer  # the statement is reusable
                with pytest.raises(TypeError, match="Tally"):
                    reader.rollups_match("a", {})
        finally:
            for reader in readers:
                reader.close()
            conn.close()
    with pytest.raises(ValueError, match="no rollups query"):
        reader.rollups_match("a", native)


def bundle_line(content: dict[str, Any], seq: int = 3) -> tuple[bytes, bytes | None]:
    """A bundle's event line of `content`, salted and hashed as a stored body's scan reads it:
    each member of a committed object its own field, a null member none."""
    fields: dict[str, tuple[Any, Any]] = {}
    for name, value in content.items():
        if name in ("actor", "target", "source", "metadata") and type(value) is dict:
            for key, member in value.items():
                if member is not None:
                    fields[f"{name}.{key}"] = (SALT, member)
        else:
            fields[name] = (SALT, value)
    leaf = reference(fields, EVENT_ID, WHEN, seq, "acme")
    assert leaf is not None
    event = {"id": EVENT_ID, "tenant_id": "acme", "seq": seq, "received_at": WHEN, **content,
             "hash": leaf.hex()}  # fmt: skip
    salts = {path: salt for path, (salt, _) in fields.items()}
    return orjson.dumps({"event": event, "salts": salts, "redacted": {}}), leaf


@needs_c
class TestBundleMembers:
    """A bundle line's committed objects, scanned as bytes (``members`` in ``_fastleaf_json.c``,
    shared with a stored body's scan): the scan takes only members that are no null, under keys
    with no dot, each once, in objects that are not empty; it declines the rest to the parsed
    path (``loads``), which answers as it does for the line given as str."""

    def _leaf(self, line: bytes | str, seq: int = 3) -> tuple[Any, int]:
        parsed: list[Any] = []

        def loads(text: Any) -> Any:
            parsed.append(text)
            return orjson.loads(text)

        leaf = _fastleaf.bundle_events([line], seq, "acme", '"acme"', loads)[0]
        return leaf, len(parsed)

    def test_the_common_line_is_scanned(self) -> None:
        line, leaf = bundle_line(
            {
                "action": "a.b",
                "actor": {"id": "u-1", "type": "user"},
                "metadata": {"n": 7, "ok": True},
                "outcome": "success",
            }
        )
        assert self._leaf(line) == (leaf, 0)
        assert self._leaf(line.decode()) == (leaf, 1)  # the parsed path agrees

    @pytest.mark.parametrize(
        "actor",
        [{"id": "u-1", "x": None}, {}, {"id": "u-1", "a.b": "x"}],
        ids=["a null member", "an empty object", "a dotted key"],
    )
    def test_declines_what_a_stored_body_takes(self, actor: dict[str, Any]) -> None:
        line, _ = bundle_line({"action": "a.b", "actor": actor})
        assert self._leaf(line) == (self._leaf(line.decode())[0], 1)

    def test_a_repeated_member_is_declined(self) -> None:
        line, leaf = bundle_line({"action": "a.b", "actor": {"id": "u-1", "type": "user"}})
        twice = line.replace(b'"actor":{"id":"u-1"', b'"actor":{"id":"u-1","id":"u-1"', 1)
        assert twice != line
        assert self._leaf(twice) == (leaf, 1)  # orjson keeps the last: the same event
