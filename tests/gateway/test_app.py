"""App-level endpoints: health, readiness, models, metrics, OpenAPI, unknown paths, alerts, shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web
from gateway_support import ACME_KEY, BETA_KEY, asgi_client, auth, config_dict, fakes, make_app, serve

from greenlang_llm.gateway.app import create_app
from greenlang_llm.gateway.config import parse_config

CHAT = {"model": "default", "messages": [{"role": "user", "content": "hello"}]}


async def test_health_and_readiness() -> None:
    providers = fakes()
    app, _ = make_app(providers=providers)
    async with asgi_client(app) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["routes"] == {"default": True, "cheap": True}
        providers["gpt"].healthy = False
        not_ready = await client.get("/health/ready")
    assert not_ready.status_code == 503
    assert not_ready.json()["routes"] == {"default": True, "cheap": False}


async def test_models_lists_what_the_key_may_use_in_either_shape() -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        acme = (await client.get("/v1/models", headers=auth())).json()
        beta = await client.get(
            "/v1/models", headers={"x-api-key": BETA_KEY, "anthropic-version": "2023-06-01"}
        )
        nobody = await client.get("/v1/models")
    assert acme["object"] == "list"
    assert [m["id"] for m in acme["data"]] == ["default", "cheap", "claude-3-5-haiku-20241022", "gpt-4o-mini"]
    assert [m["id"] for m in beta.json()["data"]] == ["cheap"]
    assert beta.json()["has_more"] is False
    assert nobody.status_code == 401


async def test_metrics_after_traffic() -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        await client.post("/v1/chat/completions", json=CHAT, headers=auth())
        await client.post("/v1/chat/completions", json={**CHAT, "model": "nope"}, headers=auth())
        await app.state.service.drain()
        text = (await client.get("/metrics")).text
    assert (
        'greenlang_gateway_requests_total{api="openai",route="default",provider="claude",status="200"} 1'
        in text
    )
    assert 'greenlang_gateway_errors_total{api="openai",type="model_not_found"} 1' in text
    assert 'greenlang_gateway_request_duration_seconds_count{api="openai",stream="false"} 2' in text
    assert 'greenlang_gateway_circuit_breaker_state{route="default",provider="claude"} 0' in text
    assert "greenlang_gateway_tokens_total" in text
    assert ACME_KEY not in text


async def test_openapi_lists_every_route() -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert {
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/models",
        "/health",
        "/metrics",
        "/admin/costs/summary",
        "/admin/costs/timeseries",
        "/admin/budgets/{tenant}",
    } <= set(spec["paths"])


async def test_unknown_path_and_method_answer_json_errors() -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        missing = await client.get("/v2/whatever")
        wrong = await client.get("/v1/messages")
    assert missing.status_code == 404
    assert "error" in missing.json()
    assert wrong.status_code == 405
    assert wrong.json()["type"] == "error"


async def test_soft_budget_alert_posts_to_the_webhook() -> None:
    received: list[dict[str, Any]] = []
    got = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        got.set()
        return web.Response(text="ok")

    hook_app = web.Application()
    hook_app.router.add_post("/alerts", hook)
    runner = web.AppRunner(hook_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        data = config_dict(
            budgets=[{"tenant": "acme", "monthly_limit_usd": 0.000001, "alert_thresholds": [0.5]}]
        )
        data["server"]["alert_webhook_url"] = f"http://127.0.0.1:{port}/alerts"
        app, _ = make_app(data)
        async with serve(app) as url:
            import httpx2

            async with httpx2.AsyncClient(base_url=url) as client:
                response = await client.post("/v1/chat/completions", json=CHAT, headers=auth())
                assert response.status_code == 200  # a soft budget only alerts
                await asyncio.wait_for(got.wait(), 5)
    finally:
        await runner.cleanup()
    assert received[0]["tenant"] == "acme"
    assert received[0]["threshold"] == 0.5


async def test_shutdown_waits_for_in_flight_stream_and_flushes_ledger() -> None:
    from greenlang_llm.cost_tracker import CostTracker
    from greenlang_llm.providers.fake import FakeProvider

    gate = asyncio.Event()
    entered = asyncio.Event()

    async def slow_sleep(_: float) -> None:
        entered.set()
        await gate.wait()

    providers = {
        "claude": FakeProvider(
            "claude-3-5-haiku-20241022", latency=1.0, sleep=slow_sleep, price_per_1k=(1, 1)
        ),
        "gpt": FakeProvider("gpt-4o-mini"),
    }
    tracker = CostTracker(storage="sqlite:///:memory:")
    closed: list[bool] = []
    original_close = tracker.close

    def record_close() -> None:
        closed.append(tracker.get_summary().total_requests == 1)
        original_close()

    tracker.close = record_close  # type: ignore[method-assign]
    app = create_app(
        parse_config(config_dict(), {"ACME_KEY": ACME_KEY, "BETA_KEY": BETA_KEY}),
        providers=providers,
        tracker=tracker,
    )
    import httpx2

    async with serve(app) as url, httpx2.AsyncClient(base_url=url, timeout=10) as client:
        pending = asyncio.create_task(client.post("/v1/chat/completions", json=CHAT, headers=auth()))
        await entered.wait()  # the request is inside the provider call
        app.state.uvicorn_server.should_exit = True  # SIGTERM's effect: stop accepting, drain
        await asyncio.sleep(0.05)  # give the server's main loop a turn to begin its shutdown
        assert not pending.done()
        assert closed == []
        gate.set()
        response = await pending
    assert response.status_code == 200
    assert orjson.loads(response.content)["choices"][0]["message"]["content"] == "ok"
    assert closed == [True]
