"""A large multi-tenant database, seeded in-process once and cached for the scale benchmarks.

Seeding a million events through HTTP takes minutes; this path runs the server's own code
(``Services.build``: ``EventService.prepare`` draws salts and commitments, ``SQLiteStore.append``
sequences, hashes leaves, writes tree nodes and the full-text rows) without the HTTP layer, at
``synchronous=NORMAL``, then signs a checkpoint for every tenant. The benchmarks then start the
real server (``_server.Server``) on the file for their HTTP measurements.

The database lives in ``benchmarks/.work/<key>/`` (gitignored) with its signing key and a
``manifest.json`` (tenants, API tokens, public key, time span), keyed by what was seeded, so a
second benchmark, or a second run, reuses it. A file lock makes concurrent runs seed it once.

The events are shaped like a real audit log, so filters and words have realistic selectivity:

* ``action``: the 16 skewed actions of ``_workload.ACTIONS``; ``category`` follows the action;
* ``outcome``: 90 % success, 8 % failure, 2 % unknown; a failure's message names one of 8
  errors (``"permission denied"``, ``"connection reset by peer"``, ...: ~1 % of events each);
* ``actor.id``: 2,000 users (``user-<k>``, Zipf s=0.8, so ``user-17`` is busier than
  ``user-1700``) and 5 % service accounts; ``target.id``: up to 50,000 objects a type;
* ``message``: a template per action around a title of 1-4 words from a 5,000-word vocabulary
  drawn Zipf s=1.0 — the commonest word is in ~1/4 of events, rank 100 in ~0.3 %, rank 3,000
  in ~0.01 % (:func:`word_at_rank`);
* ``metadata``: ``model``/``tokens_used``/``latency_ms`` on agent, tool and workflow events,
  ``region``/``bytes``/``mfa`` elsewhere;
* ``timestamp``: in order of ``seq`` (with sub-second jitter) over the ``days`` before the
  seeding time, every tenant's events interleaved in time as a live multi-tenant log would be.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import Server
from _workload import ACTIONS

__all__ = [
    "ERRORS",
    "MAIN_TENANT",
    "MODELS",
    "WORK_DIR",
    "SeedSpec",
    "Seeded",
    "seeded",
    "word_at_rank",
]

#: Bump when the generator changes: a cached database of another version is not reused.
VERSION: Final = "v2"
WORK_DIR: Final = Path(__file__).resolve().parent / ".work"
MAIN_TENANT: Final = "acme"
_CHUNK: Final = 2_000
_IN_FLIGHT: Final = 2

_CATEGORY: Final = {
    "login": "users",
    "logout": "users",
    "user.invite": "users",
    "role.grant": "users",
    "agent.invoke": "agents",
    "tool.call": "tools",
    "workflow.run": "workflows",
    "integration.connect": "integrations",
    # Not "system": its tenant.* / key.* actions are the server's own admin trail (422 to clients).
    "key.rotate": "security",
    "tenant.update": "admin",
    "policy.change": "system",
    "export.create": "data",
}
_TARGET: Final = {
    "agent.invoke": "agent",
    "tool.call": "tool",
    "workflow.run": "workflow",
    "key.rotate": "key",
    "user.invite": "user",
    "role.grant": "project",
    "integration.connect": "integration",
    "export.create": "export",
    "tenant.update": "tenant",
    "policy.change": "policy",
}
#: (error phrase, weight) of failed events.
ERRORS: Final = (
    ("permission denied", 20),
    ("connection reset by peer", 14),
    ("rate limit exceeded", 14),
    ("request timed out after 30 seconds", 12),
    ("invalid credentials", 12),
    ("quota exceeded for this billing period", 10),
    ("upstream service unavailable", 10),
    ("validation failed on a required field", 8),
)
MODELS: Final = (
    ("gpt-4o", 35),
    ("gpt-4o-mini", 25),
    ("claude-3-5-sonnet", 20),
    ("llama-3-70b", 12),
    ("mistral-large", 8),
)
_REGIONS: Final = ("eu-west-1", "us-east-1", "us-west-2", "ap-south-1")
_AGENTS: Final = tuple(
    f"{n}-bot"
    for n in (
        "triage",
        "billing",
        "support",
        "research",
        "ops",
        "sales",
        "legal",
        "hr",
        "code",
        "data",
    )
)
_TOOLS: Final = (
    "web_search",
    "sql_query",
    "send_email",
    "create_ticket",
    "read_file",
    "http_get",
    "calendar",
    "slack_post",
)
_AGENTS_UA: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0",
    "trailkeep-python/0.4 httpx/0.27",
    "curl/8.5.0",
)
_COMMON: Final = [
    "report",
    "quarterly",
    "budget",
    "roadmap",
    "invoice",
    "contract",
    "proposal",
    "customer",
    "onboarding",
    "release",
    "notes",
    "meeting",
    "agenda",
    "sprint",
    "review",
    "planning",
    "draft",
    "final",
    "summary",
    "analysis",
    "forecast",
    "pipeline",
    "security",
    "audit",
    "policy",
    "incident",
    "postmortem",
    "migration",
    "database",
    "backup",
    "schedule",
    "vendor",
    "renewal",
    "pricing",
    "launch",
    "campaign",
    "marketing",
    "sales",
    "deck",
    "hiring",
    "plan",
    "compliance",
    "training",
    "checklist",
    "design",
    "spec",
    "architecture",
    "diagram",
    "dashboard",
    "metrics",
    "quarterly",
    "revenue",
    "expense",
    "travel",
    "request",
    "approval",
    "template",
    "handbook",
    "benefits",
    "payroll",
    "tax",
    "filing",
    "annual",
    "review",
    "product",
    "feedback",
    "survey",
    "results",
    "support",
    "escalation",
    "bug",
    "triage",
    "feature",
    "backlog",
    "partner",
    "agreement",
    "legal",
    "memo",
    "board",
    "minutes",
    "investor",
    "update",
    "financial",
    "model",
    "runbook",
    "deployment",
    "kubernetes",
    "cluster",
    "upgrade",
    "network",
    "firewall",
    "access",
    "review",
    "vulnerability",
    "scan",
    "patch",
    "inventory",
    "warehouse",
    "shipping",
    "logistics",
    "order",
    "refund",
    "dispute",
    "chargeback",
    "fraud",
    "alert",
]
_SYLLABLES: Final = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "te",
    "vi",
    "zo",
    "ba",
    "de",
    "fi",
    "go",
    "hu",
    "ja",
    "ko",
    "lu",
    "ma",
    "no",
    "pe",
    "ri",
    "su",
    "ta",
    "ve",
    "wa",
    "xo",
    "yu",
    "zi",
    "bo",
    "da",
]
_VOCABULARY_SIZE: Final = 5_000


@cache
def _vocabulary() -> tuple[list[str], list[float]]:
    """5,000 words, commonest first, and their cumulative Zipf (s=1.0) weights."""
    words = list(dict.fromkeys(_COMMON))
    rng = random.Random(7)
    made = ["".join(p) for n in (2, 3) for p in itertools.product(_SYLLABLES, repeat=n)]
    rng.shuffle(made)
    taken = set(words)
    words += [w for w in made if w not in taken][: _VOCABULARY_SIZE - len(words)]
    return words, list(itertools.accumulate(1.0 / (r + 1) for r in range(len(words))))


def word_at_rank(rank: int) -> str:
    """The vocabulary's ``rank``-th commonest word (0-based)."""
    return _vocabulary()[0][rank]


def _cumulative(pairs: tuple[tuple[str, float], ...]) -> tuple[list[str], list[float]]:
    return [p for p, _ in pairs], list(itertools.accumulate(w for _, w in pairs))


_ACTION_CUM: Final = _cumulative(ACTIONS)
_ERROR_CUM: Final = _cumulative(ERRORS)
_MODEL_CUM: Final = _cumulative(MODELS)
_USER_CUM: Final = list(itertools.accumulate(1.0 / (k + 1) ** 0.8 for k in range(2_000)))
_OBJECT_CUM: Final = list(itertools.accumulate(1.0 / (k + 1) ** 0.7 for k in range(50_000)))


def _pick(rng: random.Random, population: tuple[list[str], list[float]]) -> str:
    return rng.choices(population[0], cum_weights=population[1])[0]


def _message(rng: random.Random, action: str, email: str, title: str, meta: dict[str, Any]) -> str:
    verb = action.rsplit(".", 1)[-1]
    if action.startswith("document."):
        past = {"read": "Viewed", "update": "Updated", "create": "Created", "delete": "Deleted"}
        return f'{past[verb]} document "{title}"'
    templates = {
        "login": f"User {email} signed in with {rng.choice(('password', 'sso', 'passkey'))}",
        "logout": f"User {email} signed out",
        "agent.invoke": f"Agent answered a request about {title} using {meta.get('model')}",
        "tool.call": f"Tool call made by an agent while working on {title}",
        "workflow.run": f"Workflow {title} ran {rng.randrange(2, 40)} steps",
        "key.rotate": "API key rotated for a service account",
        "user.invite": f"Invited a new member to project {title}",
        "role.grant": f"Granted role {rng.choice(('viewer', 'editor', 'owner'))} on {title}",
        "integration.connect": f"Connected {rng.choice(('slack', 'github', 'jira'))} integration",
        "export.create": f"Export of {title} created",
        "tenant.update": "Tenant settings changed",
        "policy.change": f"Retention policy changed for {title}",
    }
    return templates[action]


def _metadata(rng: random.Random, action: str) -> dict[str, Any]:
    if action in ("agent.invoke", "tool.call", "workflow.run"):
        meta: dict[str, Any] = {
            "model": _pick(rng, _MODEL_CUM),
            "tokens_used": int(rng.lognormvariate(6.5, 1.0)),
            "latency_ms": int(rng.lognormvariate(6.8, 0.7)),
        }
        if action == "tool.call":
            meta["tool"] = rng.choice(_TOOLS)
        if action != "workflow.run":
            meta["agent"] = rng.choice(_AGENTS)
        return meta
    meta = {"region": rng.choice(_REGIONS)}
    if action.startswith("document."):
        meta["bytes"] = int(rng.lognormvariate(10, 1.5))
    if action == "login":
        meta["mfa"] = rng.random() < 0.7
    return meta


def make_event(rng: random.Random, ts: str) -> dict[str, Any]:
    """One realistic event at ``ts`` (see the module docstring for the distributions)."""
    action = _pick(rng, _ACTION_CUM)
    roll = rng.random()
    outcome = "success" if roll < 0.90 else ("failure" if roll < 0.98 else "unknown")
    words, cum = _vocabulary()
    title = " ".join(rng.choices(words, cum_weights=cum, k=rng.randrange(1, 5)))
    if rng.random() < 0.95:
        k = rng.choices(range(2_000), cum_weights=_USER_CUM)[0]
        actor = {"id": f"user-{k}", "type": "user", "email": f"user{k}@example.com"}
    else:
        actor = {"id": f"svc-{rng.randrange(20)}", "type": "service"}
    meta = _metadata(rng, action)
    message = _message(rng, action, actor.get("email", actor["id"]), title, meta)
    if outcome == "failure":
        message += ": " + _pick(rng, _ERROR_CUM)
    event: dict[str, Any] = {
        "timestamp": ts,
        "action": action,
        "category": _CATEGORY.get(action, "documents"),
        "outcome": outcome,
        "actor": actor,
        "message": message,
        "metadata": meta,
    }
    if action not in ("login", "logout"):
        kind = _TARGET.get(action, "document")
        obj = rng.choices(range(50_000), cum_weights=_OBJECT_CUM)[0]
        event["target"] = {"type": kind, "id": f"{kind}-{obj}"}
    if rng.random() < 0.6:
        event["source"] = {
            "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "user_agent": rng.choice(_AGENTS_UA),
        }
    if rng.random() < 0.4:
        event["session_id"] = f"sess-{rng.randrange(200_000)}"
    if rng.random() < 0.5:
        event["request_id"] = f"req-{rng.getrandbits(64):016x}"
    return event


@dataclass(frozen=True, slots=True)
class SeedSpec:
    """What to seed: ``main`` events in :data:`MAIN_TENANT`, ``others`` tenants of ``per_other``."""

    main: int
    others: int = 9
    per_other: int = 100_000
    days: float = 30.0

    @property
    def key(self) -> str:
        return f"m{self.main}-o{self.others}x{self.per_other}-d{self.days:g}-{VERSION}"

    def tenants(self) -> dict[str, int]:
        return {
            MAIN_TENANT: self.main,
            **{f"tenant-{i:02d}": self.per_other for i in range(1, self.others + 1)},
        }


@dataclass(frozen=True, slots=True)
class Seeded:
    """A seeded database directory and what its manifest says."""

    dir: Path
    manifest: dict[str, Any]

    @property
    def db_path(self) -> Path:
        return self.dir / "trailkeep.db"

    @property
    def database(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def signing_key(self) -> Path:
        return self.dir / "signing.key"

    def token(self, tenant: str = MAIN_TENANT, role: str = "reader") -> str:
        return str(self.manifest["tenants"][tenant][role])

    @property
    def public_key(self) -> str:
        return str(self.manifest["public_key"])

    @property
    def span(self) -> tuple[datetime, datetime]:
        """The seeded events' time span (first, last)."""
        first, last = self.manifest["span"]
        return datetime.fromisoformat(first), datetime.fromisoformat(last)

    def server(self, env: dict[str, str] | None = None) -> Server:
        """A (not yet started) real server on this database and signing key."""
        return Server(self.dir, env or {})


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _timeline(rng: random.Random, count: int, first: datetime, span: timedelta) -> Iterator[str]:
    """``count`` timestamps in order over ``span`` from ``first``, with sub-second jitter."""
    step = span / max(count, 1)
    for i in range(count):
        yield _ts(first + step * (i + rng.random()))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def seeded(spec: SeedSpec, root: Path = WORK_DIR, log: Callable[[str], None] = print) -> Seeded:
    """The cached database for ``spec``, seeding it first if it is missing or incomplete."""
    target = root / spec.key
    with _locked(root / f"{spec.key}.lock"):
        manifest_file = target / "manifest.json"
        if manifest_file.exists():
            manifest = json.loads(manifest_file.read_text())
            log(
                f"seed: reusing {target} ({sum(spec.tenants().values()):,} events,"
                f" seeded in {manifest['seconds']:.0f} s at {manifest['rate']:,.0f} events/s)"
            )
        else:
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            manifest = _seed(spec, target, log)
            manifest_file.write_text(json.dumps(manifest, indent=1))
        done = Seeded(target, manifest)
        _migrate(done, log)
        return done


def _migrate(seed: Seeded, log: Callable[[str], None]) -> None:
    """Bring a cached database to the current schema here, with no server start timeout (a
    migration that backfills from a million events can take longer than a server's start)."""
    from trailkeep.service.stores import open_store

    t0 = time.monotonic()
    store = open_store(seed.database, sqlite_synchronous="NORMAL")
    store.close()
    seconds = time.monotonic() - t0
    if seconds > 1:
        log(f"seed: migrating {seed.db_path} to the current schema took {seconds:.1f} s")


def code_state() -> str:
    """A digest of the code under test (every file under ``src/``, by content) and the commit
    it sits on: numbers from a tree others are editing are only comparable while the digest
    stays the same (a commit of the same changes keeps it)."""
    repo = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted((repo / "src").rglob("*.py")):
        digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes())
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, check=False
    )
    return f"src {digest.hexdigest()[:12]} (HEAD {done.stdout.decode().strip() or '?'})"


def _seed(spec: SeedSpec, target: Path, log: Callable[[str], None]) -> dict[str, Any]:
    from trailkeep.api.services import Services
    from trailkeep.model.tenant import Role
    from trailkeep.settings import Settings

    seeded_dir = Seeded(target, {})
    services = Services.build(
        Settings(
            database=seeded_dir.database,
            signing_key=seeded_dir.signing_key,
            sqlite_synchronous="NORMAL",
        )
    )
    tenants = spec.tenants()
    total = sum(tenants.values())
    last = datetime.now(UTC).replace(microsecond=0)
    span = timedelta(days=spec.days)
    first = last - span
    log(
        f"seed: {total:,} events in {len(tenants)} tenants into {target} (in-process,"
        f" Services.build + store.append in chunks of {_CHUNK:,}, synchronous=NORMAL)"
    )
    tokens: dict[str, dict[str, Any]] = {}
    for name, count in tenants.items():
        services.tenants.create_tenant(name)
        tokens[name] = {
            "events": count,
            **{
                role.value: services.tenants.create_key(name, role, "bench").token
                for role in (Role.READER, Role.WRITER, Role.ADMIN)
            },
        }
    rounds = max(1, spec.main // 10_000)
    streams = {
        name: (random.Random(f"{VERSION}-{name}"), _timeline(random.Random(name), n, first, span))
        for name, n in tenants.items()
    }
    pending: deque[Any] = deque()
    done = 0
    t0 = last_log = time.monotonic()
    try:
        for r in range(rounds):
            for name, count in tenants.items():
                share = count * (r + 1) // rounds - count * r // rounds
                rng, times = streams[name]
                for lo in range(0, share, _CHUNK):
                    batch = [
                        services.events.prepare(make_event(rng, ts))
                        for ts in itertools.islice(times, min(_CHUNK, share - lo))
                    ]
                    pending.append(services.store.append(name, batch))
                    done += len(batch)
                    while len(pending) > _IN_FLIGHT:
                        pending.popleft().result()
            if time.monotonic() - last_log > 15:
                last_log = time.monotonic()
                log(f"  seed: {done:,}/{total:,} events, {done / (last_log - t0):,.0f} events/s")
        while pending:
            pending.popleft().result()
        seconds = time.monotonic() - t0
        services.log.sign_pending()
        public_key = services.log.signer.verifier().key_string()
    finally:
        services.close()
    with contextlib.closing(sqlite3.connect(seeded_dir.db_path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    log(
        f"seed: {total:,} events in {seconds:.0f} s = {total / seconds:,.0f} events/s;"
        f" database {seeded_dir.db_path.stat().st_size / 2**30:.2f} GiB"
    )
    return {
        "spec": asdict(spec),
        "tenants": tokens,
        "public_key": public_key,
        "span": [first.isoformat(), last.isoformat()],
        "seconds": seconds,
        "rate": total / seconds,
    }
