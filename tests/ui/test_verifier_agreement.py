"""The browser's verifier (viewer/static/js) agrees with the Python one (client/verify.py).

Many generated events — non-ASCII text, keys that JCS orders by UTF-16 code units, floats,
control characters, erased fields — are written to a real server; their proofs go through both
verifiers, unchanged and with one mutation each, and both must give the same verdict. The
canonical JSON of every value is compared byte for byte as well.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import random
from typing import Any

import httpx
import pytest

from tests.process import Server
from tests.ui.conftest import Browsing, post_events, redact
from trailkeep.client.verify import verify_event
from trailkeep.errors import TrailkeepError
from trailkeep.merkle import RFC9162, CompactRange, verify_consistency
from trailkeep.model.canonical import jcs

#: Text that JCS escapes or orders in ways a careless encoder gets wrong.
TRICKY = [
    "plain",
    "Zoë 𝄞 ✓",
    'quote " backslash \\ slash /',
    "\u0000\u0001\u001f\u007f\b\t\n\f\r",
    "\u2028\u2029",
    "\ue000\uffff",
    "日本語",
    "",
]
#: Keys whose UTF-16 order differs from their code-point order (the astral one sorts first).
KEYS = ["a", "B", "é", "\ue000", "\uffff", "\U0001f600", "\U0001d11e", "z z", "1"]
NUMBERS = [0, -1, 7, 2**53 - 1, -(2**53 - 1), 0.5, -0.0, 1e21, 1e-7, 123.456, 5e-324, 1.7e308]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(6 if depth < 2 else 4)
    if kind == 0:
        return rng.choice(TRICKY)
    if kind == 1:
        return rng.choice(NUMBERS)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.choice(TRICKY) + str(rng.randrange(1000))
    if kind == 4:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _event(rng: random.Random, i: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "action": f"test.{rng.choice(['a', 'ü', '日'])}{i}",
        "outcome": rng.choice(["success", "failure", "unknown"]),
        "actor": {"id": f"u-{i}", "email": f"user{i}@x.io", "name": rng.choice(TRICKY) or "x"},
        "message": rng.choice(TRICKY),
        "metadata": {rng.choice(KEYS) + str(k): _value(rng) for k in range(rng.randrange(1, 5))},
    }
    if rng.random() < 0.5:
        event["old"], event["new"] = _value(rng), _value(rng)
    if rng.random() < 0.3:
        event["target"] = {"type": "document", "id": rng.choice(TRICKY) or "t"}
    return event


COUNT = 40


@pytest.fixture(scope="module")
def evidence(server: Server) -> list[dict[str, Any]]:
    """Proofs of ``COUNT`` generated events, a third of them with a field erased."""
    rng = random.Random(17)
    stored = post_events(server, [_event(rng, i) for i in range(COUNT)])
    for event in stored[::3]:
        redact(server, event["id"], [rng.choice(["actor.email", "message", "actor.name"])])
    proofs = []
    with httpx.Client(base_url=server.url, headers=server.auth("reader"), timeout=30) as http:
        for event in stored:
            response = http.get(f"/v1/events/{event['id']}/proof")
            assert response.status_code == 200, response.text
            proofs.append(response.json())
    assert sum(1 for p in proofs if p["redacted"]) >= COUNT // 3
    return proofs


def _mutations(proof: dict[str, Any], rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """One copy of the proof per kind of damage, named for it."""
    out = []
    changed = copy.deepcopy(proof)
    changed["event"]["action"] += "!"
    out.append(("changed-action", changed))
    meta = copy.deepcopy(proof)
    if meta["event"].get("metadata"):  # a metadata of nulls only is not stored
        key = rng.choice(sorted(meta["event"]["metadata"]))
        meta["event"]["metadata"][key] = [meta["event"]["metadata"][key]]
        out.append(("wrapped-metadata-value", meta))
    salt = copy.deepcopy(proof)
    path = sorted(salt["salts"])[0]
    salt["salts"][path] = "A" * 22 + "=="
    out.append(("zeroed-salt", salt))
    index = copy.deepcopy(proof)
    index["event"]["seq"] += 1
    index["leaf_index"] += 1
    out.append(("moved-leaf", index))
    if proof["hashes"]:
        hashes = copy.deepcopy(proof)
        hashes["hashes"][0] = (
            "A" * 43 + "=" if hashes["hashes"][0] != "A" * 43 + "=" else "B" * 43 + "="
        )
        out.append(("modified-proof[0]", hashes))
    note = copy.deepcopy(proof)
    note["checkpoint"] = note["checkpoint"].replace("\n", "\n\n", 1)[: len(note["checkpoint"])]
    out.append(("garbled-checkpoint", note))
    return out


def _python_verdict(proof: dict[str, Any], key: str) -> bool:
    try:
        verify_event(proof, key)
    except (TrailkeepError, KeyError, TypeError, ValueError):
        return False
    return True


_BROWSER_VERIFY = """async ([proofs, keyText]) => {
  const { verifyEvidence } = await import("/ui/static/js/verify-event.js");
  const { parseVerifierKey } = await import("/ui/static/js/note.js");
  const key = await parseVerifierKey(keyText);
  const out = [];
  for (const proof of proofs) {
    try { await verifyEvidence(proof, key); out.push(true); } catch (err) { out.push(false); }
  }
  return out;
}"""

_BROWSER_JCS = """async (values) => {
  const { jcs } = await import("/ui/static/js/jcs.js");
  return values.map((v) => jcs(v));
}"""


class TestAgreement:
    """Both verifiers accept every genuine proof and reject every damaged one alike."""

    def test_same_verdicts(
        self, browsing: Browsing, server: Server, evidence: list[dict[str, Any]]
    ) -> None:
        key = httpx.get(f"{server.url}/v1/log/key").text
        rng = random.Random(9)
        cases = [("genuine", p) for p in evidence]
        cases += [m for p in evidence for m in _mutations(p, rng)]
        browsing.page.goto(browsing.url("/ui/signin"))
        browser = browsing.page.evaluate(_BROWSER_VERIFY, [[p for _, p in cases], key])
        python = [_python_verdict(p, key) for _, p in cases]
        disagreements = [
            (name, p["event"]["id"])
            for (name, p), b, y in zip(cases, browser, python, strict=True)
            if b != y
        ]
        assert disagreements == []
        assert python[: len(evidence)] == [True] * len(evidence)
        assert not any(python[len(evidence) :]), "every mutation must fail"

    def test_same_canonical_json(self, browsing: Browsing, evidence: list[dict[str, Any]]) -> None:
        values: list[Any] = [v for p in evidence for v in p["event"].values()]
        values += [{k: i for i, k in enumerate(KEYS)}, NUMBERS, TRICKY]
        browsing.page.goto(browsing.url("/ui/signin"))
        browser = browsing.page.evaluate(_BROWSER_JCS, values)
        assert browser == [jcs(v).decode() for v in values]


_BROWSER_CONSISTENCY = """async (cases) => {
  const { verifyConsistency } = await import("/ui/static/js/merkle.js");
  const { fromBase64 } = await import("/ui/static/js/bytes.js");
  const out = [];
  for (const c of cases) {
    try {
      await verifyConsistency(c.first, c.second, c.hashes.map(fromBase64),
                              fromBase64(c.root1), fromBase64(c.root2));
      out.push(true);
    } catch (err) {
      out.push(false);
    }
  }
  return out;
}"""


def _roots(server: Server, size: int) -> list[bytes]:
    """The root of every prefix ``[0, n)`` of the log, recomputed from its leaves."""
    response = httpx.get(
        f"{server.url}/v1/log/leaves",
        params={"start": 0, "end": size},
        headers=server.auth("reader"),
    )
    leaves = [base64.b64decode(leaf["hash"]) for leaf in response.json()["leaves"]]
    roots, compact = [], CompactRange(RFC9162)
    for leaf in leaves:
        compact.absorb([leaf])
        roots.append(compact.root())
    return [hashlib.sha256().digest(), *roots]


def _python_consistent(case: dict[str, Any]) -> bool:
    try:
        hashes = [base64.b64decode(h) for h in case["hashes"]]
        roots = base64.b64decode(case["root1"]), base64.b64decode(case["root2"])
        verify_consistency(RFC9162, case["first"], case["second"], hashes, *roots)
    except TrailkeepError:
        return False
    return True


class TestConsistencyAgreement:
    """Both check RFC 9162 consistency proofs alike, genuine and damaged, for many size pairs."""

    def test_same_verdicts(
        self, browsing: Browsing, server: Server, evidence: list[dict[str, Any]]
    ) -> None:
        size = COUNT
        roots = _roots(server, size)
        rng = random.Random(5)
        pairs = {(0, 0), (0, 5), (1, 1), (1, 2), (size, size)}
        pairs |= {tuple(sorted(rng.sample(range(1, size + 1), 2))) for _ in range(40)}
        cases = []
        with httpx.Client(base_url=server.url, headers=server.auth("reader")) as http:
            for first, second in sorted(pairs):
                proof = http.get("/v1/log/proof/consistency", params={"from": first, "to": second})
                hashes = proof.json()["hashes"]
                b64 = base64.b64encode
                case = {
                    "first": first,
                    "second": second,
                    "hashes": hashes,
                    "root1": b64(roots[first]).decode(),
                    "root2": b64(roots[second]).decode(),
                }
                cases.append(case)
                if hashes:
                    cases.append({**case, "hashes": hashes[:-1]})  # truncated
                    cases.append({**case, "hashes": [b64(bytes(32)).decode(), *hashes[1:]]})
                cases.append({**case, "root1": case["root2"]} if first != second
                             else {**case, "root2": b64(bytes(32)).decode()})  # fmt: skip
        browsing.page.goto(browsing.url("/ui/signin"))
        browser = browsing.page.evaluate(_BROWSER_CONSISTENCY, cases)
        python = [_python_consistent(c) for c in cases]
        assert browser == python
        assert sum(python) == len(pairs), "every genuine proof verifies, every damaged one fails"
