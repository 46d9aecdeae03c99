"""Every dialect's answer equals a brute-force reference over all events, on every backend.

Random events (from small vocabularies, so filters, derived fields and sort keys collide) and
random parameter combinations; the dialect's query goes through ``EventService`` and storage
exactly as its route sends it, and is projected into the vendor's records; the reference
(``tests/compat/reference.py``) applies the vendor's documented semantics in Python to every
record. Items, order, totals and pages must be equal.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compat import reference, strategies
from trailkeep.api.compat import agilicus, axonflow, kubiya, wasabi
from trailkeep.api.compat._common import native_content
from trailkeep.api.services import Services
from trailkeep.model.event import StoredEvent

_TENANTS = itertools.count()
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    # A fresh tenant per example, so the per-test database fixture is safe to share; each
    # backend runs the same method on its own instance, which holds no state.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
    ],
)
#: One condition at a time needs fewer examples to meet its interesting cases.
ALONE = settings(PROPERTY, max_examples=12)
some_events = st.lists(strategies.events, min_size=1, max_size=20)


def seed(services: Services, contents: list[dict[str, Any]]) -> tuple[str, list[StoredEvent]]:
    """A new tenant holding ``contents``, written through the store as the API writes them."""
    tenant = f"prop-{next(_TENANTS)}"
    services.tenants.create_tenant(tenant)
    prepared = [services.events.prepare(native_content(c)) for c in contents]
    return tenant, [a.event for a in services.store.append(tenant, prepared).result()]


def with_tenant(params: dict[str, str], tenant: str) -> dict[str, str]:
    """``params`` with the placeholder org ``TENANT`` replaced by the tenant's name (records
    with no org of their own show it)."""
    return {k: tenant if v == "TENANT" else v for k, v in params.items()}


def ids(records: list[dict[str, Any]]) -> list[Any]:
    return [r.get("id", r.get("time")) for r in records]


class TestKubiya:
    """``list``/``search`` pages equal the reference: filters, arrival-time bounds, text,
    status, both sort orders, any page."""

    @PROPERTY
    @given(contents=some_events, data=st.data())
    def test_items(self, services: Services, contents: list[dict[str, Any]], data: Any) -> None:
        tenant, stored = seed(services, contents)
        filter_: dict[str, Any] = data.draw(strategies.kubiya_filters)
        arrivals = sorted(e.received_at for e in stored)
        bounds = data.draw(
            st.sampled_from([{}, {"gte": None}, {"lte": None}, {"gte": None, "lte": None}])
        )
        filter_["timestamp"] = {k: data.draw(st.sampled_from(arrivals)) for k in bounds}
        ascending = data.draw(st.booleans())
        page, page_size = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 5))
        text = data.draw(st.none() | st.sampled_from(strategies.TEXTS))
        status = data.draw(st.sampled_from([None, "success", "failed"]))
        query = kubiya.items_query(
            tenant,
            json.dumps(filter_),
            json.dumps({"timestamp": 1 if ascending else -1}),
            page,
            page_size,
            text,
            status,
        )
        got = [kubiya.item(e) for e in services.events.select(tenant, query)]
        expected = reference.kubiya_items(
            stored,
            filter_,
            ascending=ascending,
            page=page,
            page_size=page_size,
            text=text,
            status=status,
        )
        assert got == expected

    @ALONE
    @pytest.mark.parametrize("name", [*strategies.KUBIYA, "search_text", "status_filter"])
    @given(contents=some_events, data=st.data())
    def test_each_parameter_alone(
        self, services: Services, name: str, contents: list[dict[str, Any]], data: Any
    ) -> None:
        tenant, stored = seed(services, contents)
        filter_: dict[str, Any] = {}
        text = status = None
        if name == "search_text":
            text = data.draw(st.sampled_from(strategies.TEXTS))
        elif name == "status_filter":
            status = data.draw(st.sampled_from(["success", "failed"]))
        else:
            filter_ = data.draw(strategies.one_parameter(strategies.KUBIYA, name))
        query = kubiya.items_query(tenant, json.dumps(filter_), None, 1, 50, text, status)
        got = [kubiya.item(e) for e in services.events.select(tenant, query)]
        assert got == reference.kubiya_items(stored, filter_, text=text, status=status)


class TestAxonFlow:
    """Search pages and totals equal the reference for every body."""

    @ALONE
    @pytest.mark.parametrize("name", strategies.AXONFLOW)
    @given(contents=some_events, data=st.data())
    def test_each_parameter_alone(
        self, services: Services, name: str, contents: list[dict[str, Any]], data: Any
    ) -> None:
        tenant, stored = seed(services, contents)
        body = data.draw(strategies.one_parameter(strategies.AXONFLOW, name))
        query = axonflow.search_query(axonflow.SearchIn.model_validate(body), 100)
        got = [axonflow.entry(e) for e in services.events.select(tenant, query)]
        expected = reference.axonflow_search(stored, body)
        assert (got, services.events.count(tenant, query)) == (expected.records, expected.total)

    @PROPERTY
    @given(contents=some_events, body=strategies.axonflow_bodies)
    def test_search(
        self, services: Services, contents: list[dict[str, Any]], body: dict[str, Any]
    ) -> None:
        tenant, stored = seed(services, contents)
        expected = reference.axonflow_search(stored, body)
        parsed = axonflow.SearchIn.model_validate(body)
        start, end = body.get("start_time"), body.get("end_time")
        if start and end and start > end:
            with pytest.raises(Exception, match="start_time must be before end_time"):
                axonflow.search_query(parsed, parsed.limit)
            return
        query = axonflow.search_query(parsed, parsed.limit)
        got = [axonflow.entry(e) for e in services.events.select(tenant, query)]
        assert (got, services.events.count(tenant, query)) == (expected.records, expected.total)


class TestWasabi:
    """List pages, totals and every ``order`` equal the reference; so does ``/filters``."""

    @PROPERTY
    @given(
        contents=some_events,
        params=strategies.wasabi_params,
        order=st.sampled_from([*wasabi.ORDERS, *(f"-{o}" for o in wasabi.ORDERS)]),
        page=st.integers(0, 3),
        count=st.integers(1, 5),
    )
    def test_list(
        self,
        services: Services,
        contents: list[dict[str, Any]],
        params: dict[str, str],
        order: str,
        page: int,
        count: int,
    ) -> None:
        tenant, stored = seed(services, contents)
        filters = {k: v for k, v in params.items() if k not in ("from", "to")}
        query = wasabi.list_query(filters, params.get("from"), params.get("to"), order, page, count)
        got = [wasabi.record(e) for e in services.events.select(tenant, query)]
        expected = reference.wasabi_list(stored, params, order=order, page=page, count=count)
        assert (got, services.events.count(tenant, query)) == (expected.records, expected.total)

    @ALONE
    @pytest.mark.parametrize("name", strategies.WASABI)
    @given(contents=some_events, data=st.data())
    def test_each_parameter_alone(
        self, services: Services, name: str, contents: list[dict[str, Any]], data: Any
    ) -> None:
        tenant, stored = seed(services, contents)
        params = data.draw(strategies.one_parameter(strategies.WASABI, name))
        filters = {k: v for k, v in params.items() if k not in ("from", "to")}
        query = wasabi.list_query(filters, params.get("from"), params.get("to"), None, 0, 50)
        got = [wasabi.record(e) for e in services.events.select(tenant, query)]
        expected = reference.wasabi_list(stored, params, count=50)
        assert (got, services.events.count(tenant, query)) == (expected.records, expected.total)

    @PROPERTY
    @given(contents=some_events)
    def test_filters(self, services: Services, contents: list[dict[str, Any]]) -> None:
        tenant, stored = seed(services, contents)
        got = asyncio.run(wasabi.filters_of(services.events, tenant))
        assert got == reference.wasabi_filters(stored)


Lister = Callable[..., Any]


class TestAgilicus:
    """Both lists equal the reference: direct, metadata, derived (``org_id``, ``result``) and
    attribute parameters, time windows, limits."""

    @PROPERTY
    @given(
        contents=some_events,
        params=strategies.agilicus_audit_params,
        data=st.data(),
    )
    def test_audits(
        self, services: Services, contents: list[dict[str, Any]], params: dict[str, str], data: Any
    ) -> None:
        tenant, stored = seed(services, contents)
        params = with_tenant(params, tenant)
        attributes = data.draw(
            st.fixed_dictionaries(
                {
                    "attribute_type": st.none() | st.sampled_from(["user", "group"]),
                    "attribute_id": st.none() | st.sampled_from(["a", "b"]),
                }
            )
        )
        lists = data.draw(
            st.fixed_dictionaries(
                {
                    "attribute_type": st.none()
                    | st.lists(st.sampled_from(["user", "group"]), min_size=1),
                    "attribute_id": st.none()
                    | st.lists(st.sampled_from(["a", "b", "3"]), min_size=1),
                }
            )
        )
        connector = data.draw(st.none() | st.just("c1"))
        dt_from = data.draw(st.none() | st.sampled_from(strategies.TIMES))
        dt_to = data.draw(st.none() | st.sampled_from(strategies.TIMES))
        limit = data.draw(st.integers(1, 6))
        query = agilicus.audit_query(
            tenant,
            {**params, "resources_behind_connector_id": connector},
            attributes,
            lists,
            dt_from,
            dt_to,
            limit,
        )
        got = [agilicus.audit_record(e) for e in services.events.select(tenant, query)]
        expected = reference.agilicus_audits(
            stored,
            params,
            {k: v for k, v in attributes.items() if v},
            {k: v for k, v in lists.items() if v},
            connector,
            dt_from=dt_from,
            dt_to=dt_to,
            limit=limit,
        )
        assert got == expected

    @ALONE
    @pytest.mark.parametrize("name", [*strategies.AGILICUS_AUDIT, "attribute", "connector"])
    @given(contents=some_events, data=st.data())
    def test_each_audit_parameter_alone(
        self, services: Services, name: str, contents: list[dict[str, Any]], data: Any
    ) -> None:
        tenant, stored = seed(services, contents)
        params: dict[str, str] = {}
        attributes: dict[str, str] = {}
        connector = None
        if name == "attribute":
            attributes = {"attribute_type": data.draw(st.sampled_from(["user", "group"]))}
        elif name == "connector":
            connector = "c1"
        else:
            drawn = data.draw(strategies.one_parameter(strategies.AGILICUS_AUDIT, name))
            params = with_tenant(drawn, tenant)
        query = agilicus.audit_query(
            tenant,
            {**params, "resources_behind_connector_id": connector},
            attributes,
            {},
            None,
            None,
            500,
        )
        got = [agilicus.audit_record(e) for e in services.events.select(tenant, query)]
        assert got == reference.agilicus_audits(stored, params, attributes, {}, connector)

    @ALONE
    @pytest.mark.parametrize("name", strategies.AGILICUS_AUTH)
    @given(contents=some_events, data=st.data())
    def test_each_auth_parameter_alone(
        self, services: Services, name: str, contents: list[dict[str, Any]], data: Any
    ) -> None:
        tenant, stored = seed(services, contents)
        drawn = data.draw(strategies.one_parameter(strategies.AGILICUS_AUTH, name))
        params = with_tenant(drawn, tenant)
        query = agilicus.auth_query(tenant, params, None, None, 500)
        got = [agilicus.auth_record(e) for e in services.events.select(tenant, query)]
        assert got == reference.agilicus_auth(stored, params)

    @PROPERTY
    @given(contents=some_events, params=strategies.agilicus_auth_params, limit=st.integers(1, 6))
    def test_auth_records(
        self, services: Services, contents: list[dict[str, Any]], params: dict[str, str], limit: int
    ) -> None:
        tenant, stored = seed(services, contents)
        params = with_tenant(params, tenant)
        query = agilicus.auth_query(tenant, params, None, None, limit)
        got = [agilicus.auth_record(e) for e in services.events.select(tenant, query)]
        assert got == reference.agilicus_auth(stored, params, limit=limit)
