"""Hypothesis strategies for the dialect property tests: events drawn from small vocabularies
(so filters, derived fields and sort keys collide often), and each vendor's parameters."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = [
    "AGILICUS_AUDIT",
    "AGILICUS_AUTH",
    "AXONFLOW",
    "KUBIYA",
    "WASABI",
    "agilicus_audit_params",
    "agilicus_auth_params",
    "axonflow_bodies",
    "events",
    "kubiya_filters",
    "one_parameter",
    "wasabi_params",
]

TIMES = [f"2026-01-01T00:00:0{i}Z" for i in range(6)]
ACTIONS = ["login", "invoke", "execute"]
IDS = ["1", "42", "007", "u1"]
NAMES = ["a1", "n1", "Hello"]
ORGS = ["o1", "TENANT"]
POLICIES = ["p1", "p2"]
SESSIONS = ["s1", "s2"]
GROUPS = ["g1", "g2"]
KINDS = ["tool", "agent"]
TARGET_IDS = ["t1", "t2"]
SERVICES = ["applications", "users"]
RESULTS = ["Success", "Failure", "Denied"]
TEXTS = ["hello", "ERR", "a1", "categ", "o1", "tru", "evt_", "zz"]


def _optional(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.none() | st.sampled_from(values)


def _some(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict of the fields that were drawn non-None."""
    return st.fixed_dictionaries(fields).map(
        lambda d: {k: v for k, v in d.items() if v is not None}
    )


_attribute = _some(
    attribute_type=_optional(["user", "group"]),
    attribute_id=_optional(["a", "b", 3]),
    attribute_org_id=_optional(["o1"]),
)
_metadata = _some(
    category_name=_optional([*NAMES, ""]),
    org_id=_optional([*ORGS, ""]),
    token_id=_optional(["tok1", "tok2"]),
    connector_id=_optional(["c1"]),
    group_id=_optional(GROUPS),
    decision_id=_optional(["d1", "d2"]),
    override_id=_optional(["o1"]),
    policy_name=_optional(POLICIES),
    policy_details=_optional([{"matched_policies": ["p1"]}, {"matched_policies": "p2"}]),
    policies_applied=_optional([["p2", "p3"], ["p1"], []]),
    result=_optional([*RESULTS, ""]),
    upstream_idp=_optional(["google", "okta"]),
    error_message=_optional(["Hello timeout", "err"]),
    scope=_optional(["team"]),
    extra=_optional([{"session_id": "s3"}, {"session_id": 5}, {"message": "hello"}]),
    audit_attributes=st.none() | st.lists(_attribute, max_size=2),
)

#: One client event (the native API's shape), fields drawn from the vocabularies above.
events = _some(
    timestamp=st.sampled_from(TIMES),
    action=st.sampled_from(ACTIONS),
    category=_optional(["agents", "users"]),
    outcome=_optional(["success", "failure", "unknown"]),
    actor=_some(
        id=_optional(IDS),
        email=_optional(["a@x.io", "b@x.io"]),
        name=_optional(NAMES),
    ),
    target=_some(type=_optional(KINDS), id=_optional(TARGET_IDS), name=_optional(["x"])),
    source=_some(service=_optional(SERVICES), client_id=_optional(["c1", "c2"])),
    session_id=_optional(SESSIONS),
    message=_optional(["hello world", "an ERROR here"]),
    metadata=_metadata,
).map(lambda e: {k: v for k, v in e.items() if v != {}})

#: Each vendor's parameters → their values (None: not sent).
KUBIYA: dict[str, st.SearchStrategy[Any]] = {
    "category_type": _optional(["agents", "users"]),
    "category_name": _optional(NAMES),
    "resource_type": _optional(KINDS),
    "action_type": _optional(ACTIONS),
    "session_id": _optional([*SESSIONS, "s3"]),
}
AXONFLOW: dict[str, st.SearchStrategy[Any]] = {
    "user_email": _optional(["a@x.io"]),
    "client_id": _optional(["c1"]),
    "action": _optional(ACTIONS),
    "request_type": _optional(ACTIONS),
    "decision_id": _optional(["d1"]),
    "override_id": _optional(["o1"]),
    "policy_name": _optional([*POLICIES, "p3"]),
    "start_time": _optional(TIMES),
    "end_time": _optional(TIMES),
}
WASABI: dict[str, st.SearchStrategy[Any]] = {
    "user_id": _optional(IDS),
    "group_id": _optional(GROUPS),
    "target_kind": _optional(KINDS),
    "target_id": _optional(TARGET_IDS),
    "action_key": _optional(ACTIONS),
    "from": _optional(TIMES),
    "to": _optional(TIMES),
}
AGILICUS_AUDIT: dict[str, st.SearchStrategy[Any]] = {
    "user_id": _optional(IDS),
    "action": _optional(ACTIONS),
    "target_id": _optional(TARGET_IDS),
    "target_resource_type": _optional(KINDS),
    "api_name": _optional(SERVICES),
    "token_id": _optional(["tok1"]),
    "org_id": _optional(ORGS),
}
AGILICUS_AUTH: dict[str, st.SearchStrategy[Any]] = {
    "user_id": _optional(IDS),
    "org_id": _optional(ORGS),
    "session_id": _optional(SESSIONS),
    "client_id": _optional(["c1"]),
    "upstream_idp": _optional(["google"]),
    "result": _optional(RESULTS),
    "event_name": _optional(ACTIONS),
}

kubiya_filters = _some(**KUBIYA)
axonflow_bodies = _some(**AXONFLOW, limit=st.integers(1, 5), offset=st.integers(0, 6))
wasabi_params = _some(**WASABI)
agilicus_audit_params = _some(**AGILICUS_AUDIT)
agilicus_auth_params = _some(**AGILICUS_AUTH)


def one_parameter(
    parameters: dict[str, st.SearchStrategy[Any]], name: str
) -> st.SearchStrategy[dict[str, Any]]:
    """Only the parameter ``name``, always sent: the condition under test, alone."""
    return parameters[name].filter(lambda v: v is not None).map(lambda v: {name: v})
