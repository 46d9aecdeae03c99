"""Administrative acts — tenants, keys, settings — each recorded in the admin trail.

The API and the command line perform these through :class:`Administration`, never through
``TenantService`` (the plain records, which test fixtures also use to seed a database), so
every act a person can perform leaves exactly one audit event (``service.admin_trail``).

An act is done first and recorded right after (a refused act records nothing): if the
database fails between the two, the request fails although the act took effect, and the
event is missing — the one gap left, since tenants and keys live outside the logs'
transactions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from trailkeep.errors import TimeParseError, ValidationFailedError
from trailkeep.model.tenant import ApiKey, Role, Tenant
from trailkeep.model.timeparse import format_time, parse_time, utcnow
from trailkeep.service.admin_trail import Actor, record_admin_event
from trailkeep.service.tenants import IssuedKey, TenantService
from trailkeep.storage.base import Store

__all__ = ["RETENTION_PRESETS", "Administration", "key_expiry", "settings_change"]

#: Names accepted for ``retention``: AxonFlow's tiers and their lengths (days; None: forever).
RETENTION_PRESETS: Final[Mapping[str, int | None]] = {
    "community": 7,
    "7d": 7,
    "professional": 30,
    "30d": 30,
    "enterprise": 365,
    "365d": 365,
    "forever": None,
}
#: The longest retention (100 years).
MAX_RETENTION_DAYS: Final = 36500
#: The settings that are neither retention nor the hold.
_PLAIN: Final = ("display_name",)


def _retention_days(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailedError(
            f"retention_days: {value!r} is not a whole number of days (or null: keep forever)"
        )
    if not 1 <= value <= MAX_RETENTION_DAYS:
        raise ValidationFailedError(
            f"retention_days: {value} is outside 1..{MAX_RETENTION_DAYS} (null: keep forever)"
        )
    return value


def _preset(value: Any) -> int | None:
    name = value.strip().lower() if isinstance(value, str) else value
    if name not in RETENTION_PRESETS:
        raise ValidationFailedError(
            f"retention: {value!r} is not a preset; use one of {', '.join(RETENTION_PRESETS)}"
            " (or retention_days: N)"
        )
    return RETENTION_PRESETS[name]


def settings_change(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a settings change and write it as stored: ``retention`` becomes
    ``retention_days``.

    Raises:
        ValidationFailedError: an unknown setting, a value of the wrong kind, or both
            ``retention`` and ``retention_days``.
    """
    known = {"retention", "retention_days", "legal_hold", *_PLAIN}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValidationFailedError(
            f"unknown setting {unknown[0]!r}; settings are {', '.join(sorted(known))}"
        )
    if "retention" in changes and "retention_days" in changes:
        raise ValidationFailedError("give retention (a preset) or retention_days, not both")
    out: dict[str, Any] = {}
    if "retention" in changes:
        out["retention_days"] = _preset(changes["retention"])
    if "retention_days" in changes:
        out["retention_days"] = _retention_days(changes["retention_days"])
    if "legal_hold" in changes:
        if not isinstance(changes["legal_hold"], bool):
            raise ValidationFailedError(f"legal_hold: {changes['legal_hold']!r} is not a boolean")
        out["legal_hold"] = changes["legal_hold"]
    if "display_name" in changes:
        name = changes["display_name"]
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise ValidationFailedError("display_name: at most 200 characters of text, or null")
        out["display_name"] = name
    return out


def key_expiry(text: str) -> str:
    """When a key issued now with ``--expires TEXT`` expires.

    A duration (``30d``, ``12h``) counts from now — the opposite of a search bound, where it
    means "ago"; any other time form (``2027-01-01``, ``now+90d``) is taken as written. The
    time must lie in the future.
    """
    now = utcnow()
    try:
        at = parse_time(f"now+{text.strip()}", param="expires", now=now)
    except TimeParseError:
        at = parse_time(text, param="expires", now=now)
    if at is None or at <= now:
        raise ValidationFailedError(
            f"expires: {text!r} is not in the future; give a duration (30d) or a later time"
        )
    return format_time(at)


def _key_target(key: ApiKey) -> dict[str, Any]:
    target: dict[str, Any] = {"id": key.client_id, "type": "api_key"}
    if key.name:
        target["name"] = key.name
    return target


class Administration:
    """Audited tenant, key and settings administration.

    Args:
        store: where tenants, keys and the logs are.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.records = TenantService(store)

    def create_tenant(self, name: str, actor: Actor) -> Tenant:
        """Create a tenant; recorded as ``tenant.create`` in the operator log (the tenant's
        own log starts empty, its first event the tenant's own)."""
        tenant = self.records.create_tenant(name)
        record_admin_event(
            self._store, None, "tenant.create", actor, {"id": tenant.id, "type": "tenant"},
            {"tenant": tenant.id},
        )  # fmt: skip
        return tenant

    def create_key(
        self,
        tenant_id: str | None,
        role: Role,
        actor: Actor,
        *,
        name: str = "",
        expires_at: str | None = None,
    ) -> IssuedKey:
        """Issue a key; ``key.create`` in its tenant's log (the operator log for an operator
        key). The event names the key, its role and expiry — never its secret."""
        issued = self.records.create_key(tenant_id, role, name, expires_at=expires_at)
        key = issued.key
        metadata: dict[str, Any] = {"role": role.value, "expires_at": key.expires_at}
        record_admin_event(self._store, tenant_id, "key.create", actor, _key_target(key), metadata)
        return issued

    def revoke_key(self, client_id: str, tenant_id: str | None, actor: Actor) -> ApiKey:
        """Revoke a key; ``key.revoke`` in its tenant's log (operator log for operator keys)."""
        key = self.records.revoke_key(client_id, tenant_id)
        record_admin_event(
            self._store, tenant_id, "key.revoke", actor, _key_target(key), {"role": key.role.value}
        )
        return key

    def update_settings(self, tenant_id: str, changes: Mapping[str, Any], actor: Actor) -> Tenant:
        """Change settings; what changed is recorded: ``legal_hold.set`` for the hold,
        ``tenant.settings`` (``old`` and ``new`` values) for the rest. A change that
        changes nothing records nothing."""
        wanted = settings_change(changes)
        current = self.records.get_tenant(tenant_id)
        changed = {k: v for k, v in wanted.items() if current.settings.get(k) != v}
        if not changed:
            return current
        tenant = self.records.update_settings(tenant_id, changed)
        target = {"id": tenant_id, "type": "tenant"}
        if "legal_hold" in changed:
            hold = changed.pop("legal_hold")
            record_admin_event(
                self._store, tenant_id, "legal_hold.set", actor, target, {"legal_hold": hold},
                message=f"legal hold {'placed' if hold else 'lifted'}",
            )  # fmt: skip
        if changed:
            old = {k: current.settings.get(k) for k in changed}
            record_admin_event(
                self._store, tenant_id, "tenant.settings", actor, target,
                {"settings": sorted(changed)}, old=old, new=changed,
            )  # fmt: skip
        return tenant
