"""The credential cache: a credential in steady use never lapses from it (every request in
flight at a lapse would take the slow path at once), and a revoked key still leaves it within
the cache's life."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Keys
from trailkeep.api.services import Services
from trailkeep.model.tenant import Permission
from trailkeep.service import auth

_LIFE = 1.0


@pytest.fixture(autouse=True)
def short_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_CACHE_SECONDS", _LIFE)
    monkeypatch.setattr(auth, "_REFRESH_SECONDS", 0.8 * _LIFE)


def _hits(services: Services, header: str, seconds: float) -> list[bool]:
    """Whether each cached look-up over ``seconds`` answered without the store."""
    found = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        principal = services.auth.authenticate_cached(header, None, Permission.WRITE)
        found.append(principal is not None)
        time.sleep(0.02)
    return found


def test_a_credential_in_use_stays_cached(services: Services, acme: Keys) -> None:
    header = f"Bearer {acme.writer}"
    services.auth.authenticate(header, None, Permission.WRITE)
    hits = _hits(services, header, 3 * _LIFE)
    assert len(hits) > 20
    assert all(hits), f"{hits.count(False)} of {len(hits)} look-ups missed"


def test_a_revoked_key_leaves_the_cache_within_its_life(services: Services, acme: Keys) -> None:
    header = f"Bearer {acme.writer}"
    services.auth.authenticate(header, None, Permission.WRITE)
    assert all(_hits(services, header, 0.5 * _LIFE))  # refreshed at least once meanwhile
    services.tenants.revoke_key(acme.writer.split(".")[0], "acme")
    revoked = time.monotonic()
    while services.auth.authenticate_cached(header, None, Permission.WRITE) is not None:
        assert time.monotonic() - revoked <= _LIFE + 0.5, "the revoked key stayed cached"
        time.sleep(0.02)


def test_an_unused_credential_lapses(services: Services, acme: Keys) -> None:
    header = f"Bearer {acme.writer}"
    services.auth.authenticate(header, None, Permission.WRITE)
    time.sleep(_LIFE + 0.1)
    assert services.auth.authenticate_cached(header, None, Permission.WRITE) is None
