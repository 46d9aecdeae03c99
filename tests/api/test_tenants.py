"""Tenant and key names are checked as whole strings; the 422 names the rule (issue 14, item 4)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.asyncio

BAD_TENANT_NAMES = [
    pytest.param("abc\n", id="trailing-newline"),
    pytest.param("abc\r\n", id="trailing-crlf"),
    pytest.param("\nabc", id="leading-newline"),
    pytest.param("ab\nc", id="inner-newline"),
    pytest.param("abc ", id="trailing-space"),
    pytest.param("Abc", id="upper-case"),
    pytest.param("-abc", id="leading-dash"),
    pytest.param("a/b", id="slash"),
    pytest.param("a" * 64, id="64-chars"),
    pytest.param("ábc", id="non-ascii"),
]
BAD_KEY_NAMES = [
    pytest.param("ops\n", id="trailing-newline"),
    pytest.param("ops\nkey", id="inner-newline"),
    pytest.param("ops\x1b[31m", id="escape-sequence"),
    pytest.param("ops\u2028key", id="unicode-line-separator"),
    pytest.param("k" * 201, id="201-chars"),
]


def operator(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestTenantNames:
    """``POST /v1/tenants`` refuses any name that is not wholly of the allowed form."""

    @pytest.mark.parametrize("name", BAD_TENANT_NAMES)
    async def test_refused_with_the_rule(
        self, client: httpx.AsyncClient, operator_token: str, name: str
    ) -> None:
        resp = await client.post(
            "/v1/tenants", json={"name": name}, headers=operator(operator_token)
        )
        assert resp.status_code == 422, resp.text
        error = resp.json()["error"]
        assert error["code"] == "VALIDATION_FAILED"
        assert "lower-case letters, digits" in error["message"]
        listed = await client.get("/v1/tenants", headers=operator(operator_token))
        assert listed.json() == []

    @pytest.mark.parametrize(
        "name",
        [pytest.param("a", id="one-char"), pytest.param("a-b_c9", id="all-kinds"),
         pytest.param("a" * 63, id="63-chars")],
    )  # fmt: skip
    async def test_accepted(
        self, client: httpx.AsyncClient, operator_token: str, name: str
    ) -> None:
        resp = await client.post(
            "/v1/tenants", json={"name": name}, headers=operator(operator_token)
        )
        assert resp.status_code == 201, resp.text
        assert resp.json()["id"] == name


class TestKeyNames:
    """``POST /v1/tenants/{t}/keys`` refuses a key name with control characters or line breaks."""

    @pytest.mark.parametrize("name", BAD_KEY_NAMES)
    async def test_refused_with_the_rule(
        self, client: httpx.AsyncClient, operator_token: str, name: str
    ) -> None:
        await client.post("/v1/tenants", json={"name": "acme"}, headers=operator(operator_token))
        resp = await client.post(
            "/v1/tenants/acme/keys",
            json={"role": "reader", "name": name},
            headers=operator(operator_token),
        )
        assert resp.status_code == 422, resp.text
        assert "no control characters or line breaks" in resp.json()["error"]["message"]

    async def test_tenant_in_path_is_checked_too(
        self, client: httpx.AsyncClient, operator_token: str
    ) -> None:
        resp = await client.post(
            "/v1/tenants/acme%0A/keys", json={"role": "reader"}, headers=operator(operator_token)
        )
        assert resp.status_code == 422, resp.text
        assert "invalid tenant name" in resp.json()["error"]["message"]

    async def test_printable_name_accepted(
        self, client: httpx.AsyncClient, operator_token: str
    ) -> None:
        await client.post("/v1/tenants", json={"name": "acme"}, headers=operator(operator_token))
        resp = await client.post(
            "/v1/tenants/acme/keys",
            json={"role": "reader", "name": "CI pipeline — prod (eu)"},
            headers=operator(operator_token),
        )
        assert resp.status_code == 201, resp.text
