"""The shared request path: body limits, malformed input, streams that fail or are abandoned."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx2
import orjson
import pytest
from gateway_support import ACME_KEY, CLAUDE, SIM_KEY, asgi_client, auth, config_dict, fakes, make_app, serve

from greenlang_llm._errors import ServiceUnavailableError
from greenlang_llm.providers.fake import FakeProvider
from greenlang_llm.simulator.config import ModelBehaviour, SimulatorConfig
from greenlang_llm.simulator.faults import FaultRule
from greenlang_llm.simulator.server import Simulator

CHAT = {"model": "default", "messages": [{"role": "user", "content": "hello there"}]}
MSG = {"model": "default", "max_tokens": 50, "messages": [{"role": "user", "content": "hello there"}]}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"", 400),
        (b"[1, 2]", 400),
        (b'{"model": 5, "messages": []}', 400),
        (b'{"messages": [{"role": "user", "content": "x"}]}', 400),
        (b'{"model": "default", "messages": "hi"}', 400),
        (b'{"model": "default", "messages": [{"role": "wizard", "content": "x"}]}', 400),
        (b'{"model": "default", "messages": [{"role": "user", "content": "x"}], "max_tokens": "many"}', 400),
        (b'{"model": "default", "messages": [{"role": "user", "content": "x"}], "tools": [{"x": 1}]}', 400),
        (b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}', 404),
    ],
)
async def test_bad_openai_bodies_get_4xx_in_openai_shape_and_no_upstream_call(
    body: bytes, status: int
) -> None:
    providers = fakes()
    app, _ = make_app(providers=providers)
    async with asgi_client(app) as client:
        response = await client.post("/v1/chat/completions", content=body, headers=auth())
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert all(p.calls == 0 for p in providers.values())


@pytest.mark.parametrize(
    "body",
    [
        b"{oops",
        b'{"model": "default", "messages": [{"role": "user", "content": "x"}]}',
        b'{"model": "default", "max_tokens": -1, "messages": [{"role": "user", "content": "x"}]}',
        b'{"model": "default", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}',
    ],
)
async def test_bad_anthropic_bodies_get_400_in_anthropic_shape(body: bytes) -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        response = await client.post("/v1/messages", content=body, headers={"x-api-key": ACME_KEY})
    assert response.status_code == 400
    data = response.json()
    assert data["type"] == "error"
    assert data["error"]["type"] == "invalid_request_error"
    assert response.headers["request-id"] == data["request_id"]


async def test_oversized_body_is_413_in_the_apis_shape() -> None:
    data = config_dict()
    data["server"]["max_body_bytes"] = 2048
    app, _ = make_app(data)
    big = {**MSG, "messages": [{"role": "user", "content": "x" * 5000}]}
    async with asgi_client(app) as client:
        anthropic = await client.post("/v1/messages", json=big, headers=auth())
        chunked = await client.post(
            "/v1/chat/completions", content=_chunks(orjson.dumps(big)), headers=auth()
        )
    assert anthropic.status_code == 413
    assert anthropic.json()["error"]["type"] == "request_too_large"
    assert chunked.status_code == 413
    assert chunked.json()["error"]["code"] == "request_too_large"


async def _chunks(data: bytes) -> Any:
    for i in range(0, len(data), 1000):
        yield data[i : i + 1000]


async def test_missing_key_is_401_in_each_apis_shape() -> None:
    app, _ = make_app()
    async with asgi_client(app) as client:
        openai = await client.post("/v1/chat/completions", json=CHAT)
        anthropic = await client.post("/v1/messages", json=MSG, headers={"x-api-key": "sk-unknown"})
    assert openai.status_code == 401
    assert openai.json()["error"]["code"] == "invalid_api_key"
    assert anthropic.status_code == 401
    assert anthropic.json()["error"]["type"] == "authentication_error"


async def test_admin_key_cannot_call_models() -> None:
    from gateway_support import ADMIN_KEY

    app, _ = make_app()
    async with asgi_client(app) as client:
        response = await client.post("/v1/chat/completions", json=CHAT, headers=auth(ADMIN_KEY))
    assert response.status_code == 403


async def test_rpm_limit_answers_429_with_retry_after() -> None:
    data = config_dict()
    data["keys"][0]["rpm"] = 2
    app, _ = make_app(data)
    async with asgi_client(app) as client:
        codes = [
            (await client.post("/v1/chat/completions", json=CHAT, headers=auth())).status_code
            for _ in range(3)
        ]
        refused = await client.post("/v1/messages", json=MSG, headers=auth())
    assert codes == [200, 200, 429]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["type"] == "rate_limit_error"


async def test_mid_stream_failure_ends_with_error_event_and_records_delivered_tokens() -> None:
    providers = {
        "claude": FakeProvider(CLAUDE, default_text="one two three four five", stream_fail_after=2),
        "gpt": FakeProvider("gpt-4o-mini"),
    }
    data = config_dict()
    data["routes"][0]["continue_on_failure"] = False  # continued streams: tests/continuation/
    app, service = make_app(data, providers=providers)
    async with asgi_client(app) as client:
        anthropic = await client.post("/v1/messages", json={**MSG, "stream": True}, headers=auth())
        openai = await client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=auth())
        await service.drain()
        summary = service.tracker.get_summary(tenant_id="acme")
    assert anthropic.status_code == 200
    assert "event: error" in anthropic.text
    assert "message_stop" not in anthropic.text
    assert '"finish_reason":"stop"' not in openai.text
    assert '"error"' in openai.text
    assert openai.text.endswith("data: [DONE]\n\n")
    assert summary.total_requests == 2  # each failed stream is recorded once, with what it delivered
    assert summary.total_tokens > 0


async def test_failure_before_first_byte_fails_over_and_is_recorded_once() -> None:
    providers = {
        "claude": FakeProvider(CLAUDE, script=[ServiceUnavailableError("down", status_code=503)]),
        "gpt": FakeProvider("gpt-4o-mini", default_text="from gpt"),
    }
    app, service = make_app(providers=providers)
    async with asgi_client(app) as client:
        response = await client.post("/v1/messages", json={**MSG, "stream": True}, headers=auth())
        await service.drain()
        summary = service.tracker.get_summary()
    assert response.headers["x-greenlang-provider"] == "gpt"
    assert '"text":"from"' in response.text
    assert '"text":" gpt"' in response.text
    assert summary.total_requests == 1
    assert summary.breakdown_by_provider.keys() == {"gpt"}


async def test_abandoned_stream_is_recorded_once_and_upstream_closed() -> None:
    sim_config = SimulatorConfig(models={CLAUDE: ModelBehaviour(reply_tokens=400, token_ms=5.0)})
    async with Simulator(sim_config) as sim:
        from gateway_support import SIM_ENV, sim_config_dict

        app, service = make_app(
            sim_config_dict(sim.anthropic_base_url, sim.openai_base_url), providers={}, env=SIM_ENV
        )
        async with serve(app) as url, httpx2.AsyncClient(base_url=url, timeout=10) as client:
            body = {**MSG, "max_tokens": 1000, "stream": True}
            async with client.stream("POST", "/v1/messages", json=body, headers=auth()) as response:
                seen = b""
                async for piece in response.aiter_bytes():
                    seen += piece
                    if seen.count(b"text_delta") >= 3:
                        break
            for _ in range(200):  # the gateway notices the disconnect and closes the upstream stream
                await asyncio.sleep(0.02)
                if sim.stats.open_streams == 0 and not service.pending_writes:
                    break
            await service.drain()
            summary = service.tracker.get_summary(tenant_id="acme")
            assert sim.stats.open_streams == 0
    assert summary.total_requests == 1
    assert summary.total_tokens > 0
    assert summary.total_cost_usd > 0


async def test_provider_keys_never_appear_in_logs_metrics_or_errors(
    make_stack: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with make_stack() as stack, httpx2.AsyncClient(base_url=stack.url, timeout=10) as client:
        stack.sim.faults.add(FaultRule("auth", model=CLAUDE, times=1))
        stack.sim.faults.add(FaultRule("stream_error", model="gpt-4o-mini", times=1))
        texts = [
            (await client.post("/v1/chat/completions", json=CHAT, headers=auth())).text,
            (await client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=auth())).text,
            (await client.post("/v1/messages", json={**MSG, "stream": True}, headers=auth())).text,
            (await client.post("/v1/messages", json=MSG, headers=auth("sk-bad"))).text,
            (await client.get("/metrics")).text,
            (await client.get("/health/ready")).text,
        ]
    assert caplog.records  # something was logged at DEBUG, and none of it holds a key
    for text in [*texts, caplog.text]:
        assert SIM_KEY not in text
        assert ACME_KEY not in text


async def test_every_upstream_rate_limited_is_429_with_retry_after(stack: Any) -> None:
    import openai

    stack.sim.faults.add(FaultRule("rate_limit", retry_after=7))
    async with openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key=ACME_KEY, max_retries=0) as client:
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(model="default", messages=CHAT["messages"])
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.code == "rate_limit_exceeded"


async def test_open_breakers_answer_503_with_retry_after_and_no_upstream_call() -> None:
    down = ServiceUnavailableError("down", status_code=503)
    providers = {
        "claude": FakeProvider(CLAUDE, script=[down] * 10),
        "gpt": FakeProvider("gpt-4o-mini", script=[down] * 10),
    }
    app, _ = make_app(providers=providers)
    async with asgi_client(app) as client:
        for _ in range(5):  # the default threshold: five consecutive failures open each breaker
            failed = await client.post("/v1/chat/completions", json=CHAT, headers=auth())
            assert failed.status_code == 503
        calls = {name: p.calls for name, p in providers.items()}
        refused = await client.post("/v1/messages", json=MSG, headers=auth())
        metrics = (await client.get("/metrics")).text
    assert refused.status_code == 529  # Anthropic's overloaded, which its SDK retries
    assert refused.json()["error"]["type"] == "overloaded_error"
    assert int(refused.headers["retry-after"]) >= 1
    assert {name: p.calls for name, p in providers.items()} == calls
    assert 'greenlang_gateway_circuit_breaker_state{route="default",provider="claude"} 2' in metrics


@pytest.mark.parametrize(
    ("route_timeout", "headers", "expected"),
    [
        (None, {}, None),  # no route timeout, nothing asked: the providers' own limits only
        (30.0, {}, 30.0),
        (30.0, {"x-greenlang-timeout": "2.5"}, 2.5),  # the client asks for less
        (30.0, {"x-greenlang-timeout": "300"}, 30.0),  # ... but never for more than the route allows
        (30.0, {"x-stainless-timeout": "10"}, 30.0),  # the SDKs' read timeout (a gap, not a deadline)
        (None, {"x-greenlang-timeout": "4"}, 4.0),
    ],
)
async def test_the_route_timeout_is_the_requests_deadline_unless_the_client_asks_for_less(
    route_timeout: float | None, headers: dict[str, str], expected: float | None
) -> None:
    data = config_dict()
    if route_timeout is not None:
        data["routes"][0]["timeout"] = route_timeout
    providers = fakes()
    app, _ = make_app(data, providers)
    async with asgi_client(app) as client:
        for stream in (False, True):
            response = await client.post(
                "/v1/chat/completions", json={**CHAT, "stream": stream}, headers={**auth(), **headers}
            )
            assert response.status_code == 200
    assert [r.timeout for r in providers["claude"].requests] == [expected, expected]


async def test_a_bad_timeout_header_is_a_400_naming_it() -> None:
    providers = fakes()
    app, _ = make_app(None, providers)
    async with asgi_client(app) as client:
        response = await client.post(
            "/v1/chat/completions", json=CHAT, headers={**auth(), "x-greenlang-timeout": "-1"}
        )
    assert response.status_code == 400
    assert "x-greenlang-timeout" in response.json()["error"]["message"]
    assert providers["claude"].requests == []


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_an_absurd_max_tokens_on_a_hard_budget_names_max_tokens_and_the_budget(path: str) -> None:
    budgets = [{"tenant": "acme", "monthly_limit_usd": 50.0, "hard_limit": True}]
    providers = fakes()
    app, _ = make_app(config_dict(budgets=budgets), providers)
    async with asgi_client(app) as client:
        response = await client.post(path, json={**CHAT, "max_tokens": 2**62}, headers=auth())
    assert response.status_code == 429
    message = response.json()["error"]["message"]
    assert f"max_tokens={2**62} is too large" in message
    assert "50.00 USD" in message
    assert "estimated_cost" not in message
    assert providers["claude"].requests == []


def _request(messages: list[dict[str, Any]]) -> Any:
    from starlette.requests import Request

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # a client that never sends the rest
        raise AssertionError("unreachable")

    return Request({"type": "http", "method": "POST", "headers": []}, receive)


async def test_a_body_that_never_completes_is_a_408_not_a_wait_forever() -> None:
    from greenlang_llm.gateway.handler import read_body
    from greenlang_llm.gateway.service import GatewayError

    request = _request([{"type": "http.request", "body": b"{", "more_body": True}])
    with pytest.raises(GatewayError) as info:
        await read_body(request, 1024, within=0)  # (0: expires at the first wait; no real time)
    assert (info.value.error.status, info.value.error.openai_code) == (408, "request_timeout")


async def test_a_client_gone_mid_body_is_not_read_as_a_short_body() -> None:
    from greenlang_llm.gateway.handler import read_body
    from greenlang_llm.gateway.service import GatewayError

    request = _request([
        {"type": "http.request", "body": b'{"model": "default"}', "more_body": True},
        {"type": "http.disconnect"},
    ])
    with pytest.raises(GatewayError) as info:
        await read_body(request, 1024, within=5)
    assert "client disconnected" in info.value.error.message


async def test_a_whole_body_is_read_within_the_limit() -> None:
    from greenlang_llm.gateway.handler import read_body

    request = _request([
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False},
    ])
    assert await read_body(request, 1024, within=5) == b"abcd"
