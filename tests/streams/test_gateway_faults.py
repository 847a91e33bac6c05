"""Gateway: a stream that fails after its first byte ends with the API's own error event, is counted as
a failure (gateway metrics, router metrics, breaker) and is recorded with the tokens delivered; a failure
before the first byte fails over; a stall is cut after idle_timeout; a client that hangs up gets its
upstream request closed.

Mid-stream faults go to model-id targets (one provider: nothing to fail over or continue on). Timings
are asserted only as generous bounds computed from the configured timeouts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from gateway_support import ACME_KEY as GATEWAY_ACME_KEY
from gateway_support import CLAUDE as GATEWAY_CLAUDE
from gateway_support import fakes, make_app, serve
from streams_support import (
    CLAUDE,
    GPT,
    PROVIDER_NAMES,
    api_request,
    gateway_stack,
    ledger_rows,
    running_sim,
    sse_events,
    stream_text,
    streams_when_settled,
)

from greenlang_llm._types import GenerationRequest, StreamChunk
from greenlang_llm.providers.fake import FakeProvider
from greenlang_llm.simulator.faults import FaultRule

REQUEST = GenerationRequest(prompt="Tell me about streams")
IDLE = 0.3
FIRST = 0.3
SLACK = 1.5
MID_STREAM = ["stream_cut", "stream_error", "stall", "invalid_json", "no_terminal"]
ROUTES = [
    {"name": "pair", "providers": ["claude", "gpt"]},
    {"name": "guarded", "providers": ["claude", "gpt"], "first_token_timeout": FIRST},
    {"name": "guarded_one", "providers": ["claude"], "idle_timeout": IDLE},
    {"name": "buffered", "providers": ["claude", "gpt"], "buffer_first_tokens": 6},
]


def assert_ends_with_error(api: str, events: list[tuple[str | None, object]]) -> None:
    """The API's error event ends the stream; nothing in it looks like a finished answer."""
    if api == "anthropic":
        names = [n for n, _ in events]
        assert names[-1] == "error", names
        assert "message_stop" not in names
        assert "message_delta" not in names
        error = events[-1][1]
        assert isinstance(error, dict)
        assert error["type"] == "error"
        assert error["error"]["type"]
        return
    payloads = [d for _, d in events if isinstance(d, dict)]
    errors = [i for i, d in enumerate(payloads) if "error" in d]
    assert errors == [len(payloads) - 1], payloads[-2:]  # one error object, the last payload
    assert payloads[-1]["error"]["message"]
    assert payloads[-1]["error"]["type"]
    assert all(c["choices"][0]["finish_reason"] is None for c in payloads[:-1] if c.get("choices"))
    assert not any(c.get("usage") for c in payloads[:-1])
    assert events[-1] == (None, "[DONE]") or events[-1][1] is payloads[-1]  # [DONE] only after the error


async def _post(
    http: aiohttp.ClientSession, api: str, model: str, stream: bool = True
) -> tuple[int, dict[str, str], bytes]:
    path, headers, body = api_request(api, model, REQUEST, stream)
    async with http.post(path, json=body, headers=headers) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()


@pytest.mark.parametrize("model", [CLAUDE, GPT])
@pytest.mark.parametrize("api", ["anthropic", "openai"])
@pytest.mark.parametrize("kind", MID_STREAM)
async def test_a_mid_stream_fault_ends_the_stream_with_the_api_error_event_and_counts_as_a_failure(
    kind: str, api: str, model: str
) -> None:
    async with (
        running_sim() as sim,
        gateway_stack(sim, provider_changes={"idle_timeout": IDLE}) as stack,
        aiohttp.ClientSession(stack.url) as http,
    ):
        sim.faults.add(FaultRule(kind, after=3, delay=30.0))
        status, headers, raw = await _post(http, api, model)
        await stack.service.drain()
        rows = ledger_rows(stack.service)
        router = stack.service.targets[model].router
        breaker = router.circuit_breaker(PROVIDER_NAMES[model])
        router_metrics = router.get_metrics()["global"]
        gateway = stack.service.metrics
        async with http.get("/metrics") as resp:
            exposition = await resp.text()
    events = sse_events(raw)
    assert status == 200  # the stream had begun: the error can only travel inside it
    assert_ends_with_error(api, events)
    delivered = stream_text(api, events)
    assert len(delivered.split()) == (16 if kind == "no_terminal" else 3)
    assert router_metrics["failed_requests"] == 1
    assert router_metrics["successful_requests"] == 0
    assert breaker is not None
    assert breaker.consecutive_failures == 1
    assert sum(gateway.errors.values()) == 1
    assert [k[3] for k in gateway.requests] != ["200"]  # the request is not counted as a success
    assert "greenlang_gateway_errors_total{" in exposition
    row = rows[headers["x-request-id"]]  # recorded with the tokens actually delivered
    assert row.output_tokens > 0
    assert row.total_cost_nanos > 0
    assert row.estimated


@pytest.mark.parametrize("api", ["anthropic", "openai"])
@pytest.mark.parametrize(
    ("route", "fault"),
    [
        ("pair", FaultRule("http_500", model=CLAUDE)),
        ("pair", FaultRule("reset", model=CLAUDE)),
        ("pair", FaultRule("stream_error", model=CLAUDE, after=0)),
        ("pair", FaultRule("stream_cut", model=CLAUDE, after=0)),
        ("guarded", FaultRule("slow", model=CLAUDE, delay=30.0)),
        ("buffered", FaultRule("stream_cut", model=CLAUDE, after=4)),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{v.kind}-after{v.after}",
)
async def test_a_failure_before_the_first_byte_fails_over_to_a_complete_answer(
    api: str, route: str, fault: FaultRule
) -> None:
    async with (
        running_sim() as sim,
        gateway_stack(sim, routes=ROUTES) as stack,
        aiohttp.ClientSession(stack.url) as http,
    ):
        _, _, plain = await _post(http, api, GPT, stream=False)
        sim.faults.add(fault)
        started = time.monotonic()
        status, headers, raw = await _post(http, api, route)
        elapsed = time.monotonic() - started
        await stack.service.drain()
        rows = ledger_rows(stack.service)
    events = sse_events(raw)
    body = orjson.loads(plain)
    text = body["content"][0]["text"] if api == "anthropic" else body["choices"][0]["message"]["content"]
    assert status == 200
    assert headers["x-greenlang-provider"] == "gpt"
    assert stream_text(api, events) == text  # nothing of the failed primary reached the caller
    assert events[-1][0] == "message_stop" if api == "anthropic" else events[-1] == (None, "[DONE]")
    row = rows[headers["x-request-id"]]
    assert row.provider == "gpt"
    assert not row.estimated
    assert row.total_cost_nanos > 0
    if fault.kind == "slow":
        assert FIRST <= elapsed < FIRST * SLACK + 0.5


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_a_stall_is_cut_after_the_routes_idle_timeout_with_an_error_event(api: str) -> None:
    async with (
        running_sim() as sim,
        gateway_stack(sim, routes=ROUTES) as stack,
        aiohttp.ClientSession(stack.url) as http,
    ):
        sim.faults.add(FaultRule("stall", after=4, delay=30.0))
        path, headers, body = api_request(api, "guarded_one", REQUEST, True)
        reads: list[tuple[float, bytes]] = []
        async with http.post(path, json=body, headers=headers) as resp:
            while piece := await resp.content.readany():
                reads.append((time.monotonic(), piece))
        streams = await streams_when_settled(sim)
    raw = b"".join(p for _, p in reads)
    events = sse_events(raw)
    assert_ends_with_error(api, events)
    assert len(stream_text(api, events).split()) == 4
    error_at = next(i for i, (_, p) in enumerate(reads) if b"error" in p)
    gap = reads[error_at][0] - reads[error_at - 1][0]
    assert IDLE * 0.9 <= gap < IDLE * SLACK
    assert streams["open"] == 0  # the stalled upstream request was closed


@pytest.mark.parametrize("model", [CLAUDE, GPT])
@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_a_client_hanging_up_closes_the_upstream_request_and_is_recorded(api: str, model: str) -> None:
    async with (
        running_sim(token_ms=25) as sim,
        gateway_stack(sim) as stack,
        aiohttp.ClientSession(stack.url) as http,
    ):
        path, headers, body = api_request(api, model, REQUEST, True)
        resp = await http.post(path, json=body, headers=headers)
        received = b""
        while len(sse_events(received)) < 4:  # a few deltas in, then hang up
            received += await resp.content.readany()
        request_id = resp.headers["x-request-id"]
        resp.close()
        for _ in range(200):
            if sim.stats.snapshot()["streams"]["client_closed"]:
                break
            await asyncio.sleep(0.01)
        streams = await streams_when_settled(sim)
        for _ in range(200):
            await stack.service.drain()
            rows = ledger_rows(stack.service)
            if request_id in rows:
                break
            await asyncio.sleep(0.01)
        router_metrics = stack.service.targets[model].router.get_metrics()["global"]
    assert streams["client_closed"] == 1
    assert streams["open"] == 0
    assert streams["completed"] == 0
    row = rows[request_id]
    assert 0 < row.output_tokens < 16
    assert row.estimated
    assert row.total_cost_nanos > 0
    assert router_metrics["failed_requests"] == 0
    assert router_metrics["cancelled_requests"] == 1


class _EndsWithoutFinish(FakeProvider):
    """A provider whose stream stops after some text without a finish reason (a buggy custom provider)."""

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        for word in ("half", " an", " answer"):
            yield StreamChunk(word, provider=self.name, model_id=self.model_id)


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_an_upstream_stream_ending_without_a_finish_reason_ends_with_an_error_not_a_clean_end(
    api: str,
) -> None:
    providers = fakes()
    providers["claude"] = _EndsWithoutFinish(GATEWAY_CLAUDE, price_per_1k=("0.0008", "0.004"))
    app, service = make_app(providers=providers)
    async with serve(app) as url, aiohttp.ClientSession(url) as http:
        path, headers, body = api_request(api, GATEWAY_CLAUDE, REQUEST, True)
        headers["authorization"] = f"Bearer {GATEWAY_ACME_KEY}"
        async with http.post(path, json=body, headers=headers) as resp:
            events = sse_events(await resp.read())
            request_id = resp.headers["x-request-id"]
        await service.drain()
        rows = ledger_rows(service)
    assert_ends_with_error(api, events)
    assert stream_text(api, events) == "half an answer"
    assert rows[request_id].estimated
    assert rows[request_id].output_tokens > 0


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_a_slow_first_token_with_nowhere_to_fail_over_is_a_timeout_error_and_a_counted_failure(
    api: str,
) -> None:
    changes = {"first_token_timeout": FIRST}
    async with (
        running_sim() as sim,
        gateway_stack(sim, provider_changes=changes) as stack,
        aiohttp.ClientSession(stack.url) as http,
    ):
        sim.faults.add(FaultRule("slow", model=CLAUDE, delay=30.0))
        started = time.monotonic()
        status, _, raw = await _post(http, api, CLAUDE)
        elapsed = time.monotonic() - started
        router = stack.service.targets[CLAUDE].router
        breaker = router.circuit_breaker(PROVIDER_NAMES[CLAUDE])
        failed = router.get_metrics()["global"]["failed_requests"]
        errors = dict(stack.service.metrics.errors)
    body = orjson.loads(raw)  # nothing was streamed yet: a plain error answer in the API's shape
    assert status == 504
    assert (
        (body["error"]["type"] == "timeout_error")
        if api == "anthropic"
        else (body["error"]["code"] == "timeout")
    )
    assert FIRST <= elapsed < FIRST * SLACK + 0.5
    assert failed == 1
    assert breaker is not None
    assert breaker.consecutive_failures == 1
    assert errors == {(api, "timeout"): 1}
