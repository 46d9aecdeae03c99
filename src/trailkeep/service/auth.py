"""Authentication: from an ``Authorization`` header to a principal acting in one tenant."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import threading
import time

from trailkeep.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    TrailkeepError,
)
from trailkeep.model.tenant import (
    OPERATOR_LOG,
    ApiKey,
    Permission,
    Principal,
    Role,
    secrets_match,
    split_token,
)
from trailkeep.model.timeparse import format_time, utcnow
from trailkeep.storage.base import Store

__all__ = ["TOUCH_INTERVAL", "Authenticator"]

log = logging.getLogger(__name__)

_CACHE_SECONDS = 5.0
#: A credential still in use this close to the end of its cache entry is read again from the
#: store in the background, so that under steady traffic its entry never lapses: otherwise
#: every request in flight at that moment misses at once and takes the slow path.
_REFRESH_SECONDS = 1.0
#: Seconds between two writes of one key's ``last_used_at`` by one process: a key's last use
#: is known to within a minute, at the cost of one small write a minute, not one per request.
TOUCH_INTERVAL = 60.0


def _expired(key: ApiKey) -> AuthenticationError:
    return AuthenticationError(
        f"key {key.client_id} expired at {key.expires_at}; ask an operator or admin for a new"
        " one (trailkeep keys create)",
        code="KEY_EXPIRED",
    )


def _credentials(header: str) -> tuple[str, str]:
    """``(client_id, secret)`` from a Bearer, UserKey or Basic ``Authorization`` value."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    try:
        if scheme in ("bearer", "userkey"):
            return split_token(value)
        if scheme == "basic":
            client_id, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
            if sep and client_id and secret:
                return client_id, secret
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise AuthenticationError(
        "unrecognized credential: send 'Authorization: Bearer <token>', 'UserKey <token>'"
        " or Basic client_id:secret"
    )


class Authenticator:
    """Checks credentials against stored key hashes, caching hits for a few seconds.

    The cache is keyed by a digest of the whole header, so a secret never sits in memory
    longer than the request that carried it; revoking a key takes effect within
    ``_CACHE_SECONDS``. An entry still in use near its end is renewed from the store in the
    background (``_REFRESH_SECONDS``), so a busy credential never lapses. A key's expiry is
    checked on every request, cached or not; its last use is written at most every
    ``TOUCH_INTERVAL`` seconds, on a thread of its own.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[bytes, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()
        self._touched: dict[str, float] = {}
        self._refreshing: set[bytes] = set()

    def _cached(self, header: str) -> tuple[str, Role, str | None] | None:
        digest = hashlib.sha256(header.encode()).digest()
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is None or hit[0] <= now:
            return None
        key = hit[1]
        if key.expires_at is not None and key.expired(format_time(utcnow())):
            raise _expired(key)
        if hit[0] - now < _REFRESH_SECONDS:
            self._refresh(digest, key)
        self._note_use(key.client_id)
        return key.client_id, key.role, key.tenant_id

    def _refresh(self, digest: bytes, key: ApiKey) -> None:
        """Read ``key`` again from the store on a thread of its own (the caller may be the
        event loop) and renew its entry, or drop it if the key was revoked or replaced."""
        with self._lock:
            if digest in self._refreshing:
                return
            self._refreshing.add(digest)
        threading.Thread(target=self._reread, args=(digest, key), daemon=True).start()

    def _reread(self, digest: bytes, key: ApiKey) -> None:
        # The new entry's life counts from before the read: a revocation the read misses
        # still takes effect within _CACHE_SECONDS, as for an entry made by a full check.
        now = time.monotonic()
        try:
            current = self._store.get_key(key.client_id)
        except Exception:  # a closed store at shutdown, a busy database: the entry lapses
            log.debug("could not read key %s again", key.client_id, exc_info=True)
            current = None
        with self._lock:
            self._refreshing.discard(digest)
            if (
                current is None
                or current.revoked_at is not None
                or current.secret_hash != key.secret_hash
            ):
                self._cache.pop(digest, None)
            elif digest in self._cache:
                self._cache[digest] = (now + _CACHE_SECONDS, current)

    def _note_use(self, client_id: str) -> None:
        """Write the key's last use, at most every ``TOUCH_INTERVAL`` seconds, off the
        request's path (a thread of its own: the caller may be the event loop)."""
        now = time.monotonic()
        with self._lock:
            if now - self._touched.get(client_id, -TOUCH_INTERVAL) < TOUCH_INTERVAL:
                return
            self._touched[client_id] = now
            if len(self._touched) > 100_000:
                self._touched.clear()
        used = {client_id: format_time(utcnow())}
        threading.Thread(target=self._touch, args=(used,), daemon=True).start()

    def _touch(self, used: dict[str, str]) -> None:
        try:
            self._store.touch_keys(used)
        except Exception:  # a closed store at shutdown, a busy database: the next use retries
            log.debug("could not note the last use of %s", ", ".join(used), exc_info=True)
            with self._lock:
                for client_id in used:
                    self._touched.pop(client_id, None)

    def _key(self, header: str) -> tuple[str, Role, str | None]:
        hit = self._cached(header)
        if hit is not None:
            return hit
        digest = hashlib.sha256(header.encode()).digest()
        now = time.monotonic()
        client_id, secret = _credentials(header)
        key = self._store.get_key(client_id)
        if key is None or key.revoked_at is not None or not secrets_match(secret, key.secret_hash):
            raise AuthenticationError("invalid or revoked credential")
        if key.expired(format_time(utcnow())):
            raise _expired(key)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + _CACHE_SECONDS, key)
        self._note_use(key.client_id)
        return key.client_id, key.role, key.tenant_id

    def authenticate(
        self, authorization: str | None, org_id: str | None, permission: Permission
    ) -> Principal:
        """The principal for a request needing ``permission``.

        Args:
            authorization: the ``Authorization`` header, if any.
            org_id: the ``X-Org-ID`` header: picks the tenant for operator keys, and must
                match the key's own tenant otherwise.
        """
        if not authorization:
            raise AuthenticationError("missing credential: send an Authorization header")
        client_id, role, tenant_id = self._key(authorization)
        org_id = org_id.strip() if org_id else None
        if role is Role.OPERATOR:
            if org_id:
                if self._store.get_tenant(org_id) is None:
                    raise NotFoundError(f"no tenant {org_id!r}")
                tenant_id = org_id
        elif org_id and org_id != tenant_id:
            raise PermissionDeniedError("X-Org-ID names a tenant this key does not belong to")
        principal = Principal(client_id, role, tenant_id)
        if tenant_id == OPERATOR_LOG and permission is not Permission.READ:
            raise PermissionDeniedError(
                f"{OPERATOR_LOG} is the operator log: only the server writes to it; read it"
                " with an operator key"
            )
        if not principal.can(permission):
            raise PermissionDeniedError(
                f"a {role.value} key may not {permission.value}; use a key with that role"
            )
        return principal

    def authenticate_cached(
        self, authorization: str | None, org_id: str | None, permission: Permission
    ) -> Principal | None:
        """``authenticate`` without I/O: None when the answer needs the database.

        Lets an async caller answer most requests on the event loop and send only cache
        misses (and operators naming a tenant) to a thread.
        """
        hit = self._cached(authorization) if authorization else None
        if hit is None or (hit[1] is Role.OPERATOR and org_id):
            return None
        return self.authenticate(authorization, org_id, permission)

    def cached_client_id(self, authorization: str) -> str | None:
        """The client id of a credential verified in the last few seconds, else None (no I/O)."""
        try:
            hit = self._cached(authorization)
        except TrailkeepError:  # expired: the request itself will say so
            return None
        return None if hit is None else hit[0]

    def verified_client_id(self, authorization: str) -> str | None:
        """The client id of a credential whose secret checks out, else None.

        For rate limiting, which must count only a principal that proved who it is: a client
        id alone is no proof (readers see other clients' ids), so anything that fails here
        counts against the peer address instead.
        """
        try:
            return self._key(authorization)[0]
        except TrailkeepError:  # unknown, revoked, malformed, or the database is unavailable
            return None
