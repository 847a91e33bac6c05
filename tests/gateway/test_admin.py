"""Admin API (admin key only) and /v1/usage (a tenant's own costs only)."""

from __future__ import annotations

import csv
import io

from gateway_support import ADMIN_KEY, BETA_KEY, asgi_client, auth, config_dict, make_app

CHAT = {"model": "default", "messages": [{"role": "user", "content": "a b c"}]}
CHEAP = {"model": "cheap", "messages": [{"role": "user", "content": "a b c d"}]}


async def _traffic(client, service) -> None:  # type: ignore[no-untyped-def]
    assert (await client.post("/v1/chat/completions", json=CHAT, headers=auth())).status_code == 200
    assert (await client.post("/v1/chat/completions", json=CHEAP, headers=auth(BETA_KEY))).status_code == 200
    await service.drain()


async def test_summary_has_cost_summary_fields_and_filters_by_tenant() -> None:
    app, service = make_app()
    async with asgi_client(app) as client:
        await _traffic(client, service)
        everything = (await client.get("/admin/costs/summary", headers=auth(ADMIN_KEY))).json()
        acme = (await client.get("/admin/costs/summary?tenant=acme", headers=auth(ADMIN_KEY))).json()
    assert set(everything) >= {
        "total_cost_usd",
        "total_tokens",
        "total_requests",
        "breakdown_by_provider",
        "breakdown_by_agent",
        "breakdown_by_model",
        "breakdown_by_tenant",
    }
    assert everything["total_requests"] == 2
    assert set(everything["breakdown_by_tenant"]) == {"acme", "beta"}
    assert acme["total_requests"] == 1
    assert set(acme["breakdown_by_tenant"]) == {"acme"}


async def test_admin_endpoints_refuse_tenant_keys_with_403_and_unknown_with_401() -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        for path in (
            "/admin/costs/summary",
            "/admin/costs/timeseries",
            "/admin/budgets/acme",
            "/admin/providers",
        ):
            assert (await client.get(path, headers=auth())).status_code == 403
            assert (await client.get(path, headers=auth("sk-nobody"))).status_code == 401
            assert (await client.get(path)).status_code == 401


async def test_usage_shows_only_the_callers_tenant_whatever_it_asks() -> None:
    app, service = make_app()
    async with asgi_client(app) as client:
        await _traffic(client, service)
        beta = (await client.get("/v1/usage?tenant=acme", headers=auth(BETA_KEY))).json()
    assert beta["tenant"] == "beta"
    assert set(beta["breakdown_by_tenant"]) == {"beta"}
    assert beta["total_requests"] == 1


async def test_timeseries_json_and_csv() -> None:
    app, service = make_app()
    async with asgi_client(app) as client:
        await _traffic(client, service)
        data = (await client.get("/admin/costs/timeseries?granularity=daily", headers=auth(ADMIN_KEY))).json()
        response = await client.get("/admin/costs/timeseries?format=csv&tenant=acme", headers=auth(ADMIN_KEY))
        bad = await client.get("/admin/costs/timeseries?granularity=weekly", headers=auth(ADMIN_KEY))
        bad_date = await client.get("/admin/costs/timeseries?start=yesterday", headers=auth(ADMIN_KEY))
    assert data["granularity"] == "daily"
    assert sum(p["total_cost_usd"] for p in data["data"]) > 0
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["timestamp", "total_cost_usd"]
    assert len(rows) > 1
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "granularity"
    assert bad_date.status_code == 400


async def test_budget_status_and_unknown_budget() -> None:
    app, service = make_app(config_dict(budgets=[{"tenant": "acme", "monthly_limit_usd": 10.0}]))
    async with asgi_client(app) as client:
        await _traffic(client, service)
        status = (await client.get("/admin/budgets/acme", headers=auth(ADMIN_KEY))).json()
        missing = await client.get("/admin/budgets/beta", headers=auth(ADMIN_KEY))
    assert status["tenant"] == "acme"
    assert set(status) >= {
        "percentage_used",
        "remaining_usd",
        "projected_monthly_cost",
        "alert_triggered",
        "alert_level",
    }
    assert 0 < status["percentage_used"] < 1
    assert missing.status_code == 404


async def test_providers_view_shows_breaker_state_per_route() -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        data = (await client.get("/admin/providers", headers=auth(ADMIN_KEY))).json()
    assert data["default"]["providers"]["claude"]["circuit_breaker_state"] == "closed"
    assert set(data) >= {"default", "cheap", "gpt-4o-mini"}
