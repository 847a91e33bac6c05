"""GatewayService: worst-case reservations (cheap bound, exact fallback), batched ledger writes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pytest
from gateway_support import ENV, config_dict

from greenlang_llm._errors import ProviderConnectionError, ProviderError
from greenlang_llm._types import GenerationRequest, GenerationResponse, ProviderHealth, StreamChunk
from greenlang_llm.cost_tracker import CostTracker
from greenlang_llm.gateway.config import parse_config
from greenlang_llm.gateway.service import GatewayError, GatewayService
from greenlang_llm.gateway.targets import Target, build_provider
from greenlang_llm.gateway.worst_case import prompt_byte_bound
from greenlang_llm.pricing import clear_price_overrides, estimate_cost_usd, price_usage, set_price_override
from greenlang_llm.providers import OpenAIProvider
from greenlang_llm.providers.base_provider import BaseLLMProvider
from greenlang_llm.tokens import count_request_tokens, count_text_tokens


class PricedProvider(BaseLLMProvider):
    """Default count_tokens/estimate_cost (real tokenizer and price catalog); canned replies."""

    name: ClassVar[str] = "openai"

    def __init__(self, model_id: str = "gpt-4o-mini") -> None:
        self.model_id = model_id
        self.calls = 0

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        self.calls += 1
        usage = price_usage(self.name, self.model_id, self.count_tokens(request), 3)
        return GenerationResponse("one two three", self.name, self.model_id, usage, "stop")

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        yield StreamChunk("x", "stop", None)

    async def health_check(self) -> ProviderHealth:
        return ProviderHealth(True)


def _service(limit: float) -> tuple[GatewayService, dict[str, PricedProvider]]:
    data = config_dict(budgets=[{"tenant": "acme", "monthly_limit_usd": limit, "hard_limit": True}])
    providers = {"claude": PricedProvider(), "gpt": PricedProvider()}
    service = GatewayService(
        parse_config(data, ENV), providers=providers, tracker=CostTracker(storage="sqlite:///:memory:")
    )
    return service, providers


def test_byte_bound_is_at_least_the_token_count() -> None:
    for text in ("hello", "ünïcødé " * 50, "a" * 3000, "日本語のテキスト" * 40, "\n\t{}[]" * 100):
        request = GenerationRequest(messages=[{"role": "user", "content": text}], system="be brief")
        bound = prompt_byte_bound(request)
        assert bound is not None
        for model in ("gpt-4o-mini", "gpt-4", "claude-3-5-haiku-20241022", "claude-sonnet-4-6"):
            assert bound >= count_request_tokens(request, model), model
    image = GenerationRequest(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}])
    assert prompt_byte_bound(image) is None


async def test_tenant_near_its_limit_is_admitted_on_the_exact_count() -> None:
    prompt = "word " * 400  # ~2000 bytes but ~400 tokens: the byte bound is 5x the real count
    request = GenerationRequest(messages=[{"role": "user", "content": prompt}], max_tokens=10)
    provider = PricedProvider()
    exact = estimate_cost_usd("openai", "gpt-4o-mini", provider.count_tokens(request), 10)
    loose = estimate_cost_usd("openai", "gpt-4o-mini", prompt_byte_bound(request) or 0, 10)
    assert loose > 2 * exact
    service, _ = _service(limit=(exact + loose) / 2)
    key = service.keys.lookup(ENV["ACME_KEY"])
    assert key is not None
    reservation = service.reserve(key, service.targets["default"], request)
    assert reservation is not None
    assert reservation.amount_usd == pytest.approx(exact, rel=1e-6)
    service.tracker.release(reservation)
    await service.close()


async def test_refused_when_even_the_exact_worst_case_does_not_fit() -> None:
    request = GenerationRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=100_000)
    service, providers = _service(limit=0.001)
    key = service.keys.lookup(ENV["ACME_KEY"])
    assert key is not None
    with pytest.raises(GatewayError) as info:
        await service.generate(key, service.targets["default"], request, "req_1")
    err: Any = info.value.error
    assert (err.status, err.openai_code) == (429, "budget_exceeded")
    assert "acme" in err.message
    assert providers["claude"].calls == 0
    await service.close()


async def test_batched_ledger_writes_record_each_request_once_and_free_reservations() -> None:
    service, _ = _service(limit=1.0)
    key = service.keys.lookup(ENV["ACME_KEY"])
    assert key is not None
    request = GenerationRequest(messages=[{"role": "user", "content": "hello"}], max_tokens=50)
    responses = [
        await service.generate(key, service.targets["default"], request, f"req_{i}") for i in range(20)
    ]
    await service.drain()
    summary = service.tracker.get_summary(tenant_id="acme")
    assert summary.total_requests == 20
    assert summary.total_cost_usd == pytest.approx(sum(r.usage.total_cost_usd for r in responses), abs=1e-9)
    status = service.tracker.check_budget("acme")
    assert status.reserved_usd == 0
    await service.close()


class _FlakyTracker(CostTracker):
    """A ledger whose writes can be held (threading.Event) or made to fail."""

    def __init__(self, quick: bool = False) -> None:
        super().__init__(storage="sqlite:///:memory:")
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail = False
        self.quick = quick
        self.watched: asyncio.Task[Any] | None = None
        self.watched_done_at_write: list[bool] = []

    @property
    def quick_writes(self) -> bool:  # held writes must not hold the event loop: the writer thread
        return self.quick

    def track_many(self, records: Any) -> int:
        self.entered.set()
        if self.watched is not None:
            self.watched_done_at_write.append(self.watched.done())
        self.gate.wait(10)
        if self.fail:
            raise OSError("disk full")
        return super().track_many(records)

    def track_usage(self, *args: Any, **kwargs: Any) -> bool:
        if self.fail:
            raise OSError("disk full")
        return super().track_usage(*args, **kwargs)


def _durable_service(quick: bool = False) -> tuple[GatewayService, _FlakyTracker]:
    data = config_dict()
    data["server"]["durable_replies"] = True
    tracker = _FlakyTracker(quick)
    service = GatewayService(
        parse_config(data, ENV),
        providers={"claude": PricedProvider(), "gpt": PricedProvider()},
        tracker=tracker,
    )
    return service, tracker


async def test_durable_replies_wait_for_the_ledger_record() -> None:
    service, tracker = _durable_service()
    key = service.keys.lookup(ENV["ACME_KEY"])
    assert key is not None
    request = GenerationRequest(messages=[{"role": "user", "content": "hello"}], max_tokens=50)
    tracker.gate.clear()
    call = asyncio.create_task(service.generate(key, service.targets["default"], request, "req_d1"))
    assert await asyncio.to_thread(tracker.entered.wait, 5)  # the write has started and is held
    assert not call.done()  # the answer is ready, but its record is not durable yet
    tracker.gate.set()
    response = await asyncio.wait_for(call, 5)
    assert response.text == "one two three"
    assert service.tracker.get_summary().total_requests == 1
    await service.close()


async def test_durable_replies_wait_for_a_record_committed_on_the_event_loop() -> None:
    service, tracker = _durable_service(quick=True)
    assert service.ledger.inline
    key = service.keys.lookup(ENV["ACME_KEY"])
    assert key is not None
    request = GenerationRequest(messages=[{"role": "user", "content": "hello"}], max_tokens=50)
    call = asyncio.create_task(service.generate(key, service.targets["default"], request, "req_d3"))
    tracker.watched = call
    response = await asyncio.wait_for(call, 5)
    assert tracker.watched_done_at_write == [False]  # written while the answer waited for it
    assert response.text == "one two three"
    assert service.tracker.get_summary().total_requests == 1
    await service.close()


@pytest.mark.parametrize("quick", [False, True], ids=["writer-thread", "on-the-loop"])
async def test_durable_reply_is_withheld_when_the_record_cannot_be_written(quick: bool) -> None:
    service, tracker = _durable_service(quick)
    tracker.fail = True
    key = service.keys.lookup(ENV["ACME_KEY"])
    assert key is not None
    request = GenerationRequest(messages=[{"role": "user", "content": "hello"}], max_tokens=50)
    with pytest.raises(GatewayError) as info:
        await service.generate(key, service.targets["default"], request, "req_d2")
    assert (info.value.error.status, info.value.error.openai_code) == (503, "ledger_unavailable")
    await service.close()


async def test_durable_stream_ends_with_an_error_event_when_the_record_cannot_be_written() -> None:
    from gateway_support import asgi_client, auth

    from greenlang_llm.gateway.app import create_app
    from greenlang_llm.providers.fake import FakeProvider

    data = config_dict()
    data["server"]["durable_replies"] = True
    tracker = _FlakyTracker()
    tracker.fail = True
    app = create_app(
        parse_config(data, ENV),
        providers={"claude": FakeProvider("m", default_text="a b c"), "gpt": FakeProvider("n")},
        tracker=tracker,
    )
    body = {
        "model": "default",
        "max_tokens": 20,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    async with asgi_client(app) as client:
        response = await client.post("/v1/messages", json=body, headers=auth())
    assert '"text":"a"' in response.text
    assert "event: error" in response.text
    assert "message_stop" not in response.text


class CountingHealth(PricedProvider):
    def __init__(self) -> None:
        super().__init__()
        self.probes = 0

    async def health_check(self) -> ProviderHealth:
        self.probes += 1
        return ProviderHealth(True)


def _configured(server: dict[str, Any], route: dict[str, Any]) -> tuple[GatewayService, dict[str, Any]]:
    data = config_dict()
    data["server"].update(server)
    data["routes"][0].update(route)
    providers = {"claude": CountingHealth(), "gpt": CountingHealth()}
    service = GatewayService(
        parse_config(data, ENV), providers=providers, tracker=CostTracker(storage="sqlite:///:memory:")
    )
    return service, providers


async def test_breaker_threshold_and_recovery_come_from_the_server_table_or_the_route() -> None:
    service, _ = _configured(
        {"circuit_breaker_threshold": 3, "circuit_breaker_timeout": 12.5},
        {"circuit_breaker_threshold": 2, "circuit_breaker_timeout": 4},
    )
    try:
        routed = service.targets["default"].router
        assert (routed.circuit_breaker_threshold, routed.circuit_breaker_timeout) == (2, 4.0)
        for name in ("cheap", "gpt-4o-mini"):  # a route without its own, and a bare model_id
            router = service.targets[name].router
            assert (router.circuit_breaker_threshold, router.circuit_breaker_timeout) == (3, 12.5)
    finally:
        await service.close()


async def test_a_route_breaker_opens_after_its_own_threshold() -> None:
    service, providers = _configured({}, {"circuit_breaker_threshold": 1, "providers": ["claude"]})
    try:
        target = service.targets["default"]
        request = GenerationRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=5)

        async def fail(request: GenerationRequest) -> GenerationResponse:
            raise ProviderConnectionError("down", provider="claude")

        providers["claude"].generate = fail  # type: ignore[method-assign]
        with pytest.raises(ProviderError):
            await target.router.generate(request)
        assert ("default", "claude", "open") in service.breaker_states()
    finally:
        await service.close()


async def test_health_monitoring_probes_every_route_until_close() -> None:
    service, providers = _configured({"health_check_interval": 3600}, {})
    await service.start_health_monitoring(delay=0)  # (by default the first round waits an interval)
    for _ in range(20):
        await asyncio.sleep(0)
    # claude: route "default" and its model_id; gpt: "default", "cheap" and its model_id
    assert (providers["claude"].probes, providers["gpt"].probes) == (2, 3)
    monitors = [t for t in asyncio.all_tasks() if t.get_name() == "greenlang-llm-health-monitor"]
    assert len(monitors) == len(service.targets)
    await service.close()
    assert all(t.done() for t in monitors)


async def test_health_check_interval_zero_starts_no_probes() -> None:
    service, providers = _configured({"health_check_interval": 0}, {})
    await service.start_health_monitoring(delay=0)
    await asyncio.sleep(0)
    assert providers["claude"].probes == providers["gpt"].probes == 0
    await service.close()


@pytest.mark.parametrize("ptype", ["anthropic", "openai"])
async def test_provider_backoff_and_retry_after_cap_come_from_the_config(ptype: str) -> None:
    data = config_dict()
    data["providers"][0].update(type=ptype, base_delay=0.25, max_delay=2, max_retry_after=5)
    provider = build_provider(parse_config(data, ENV).providers[0])
    try:
        policy = provider.retry_policy  # type: ignore[attr-defined]
        assert (policy.backoff.base_delay, policy.backoff.max_delay) == (0.25, 2.0)
        assert policy.max_retry_after == 5.0
    finally:
        await provider.close()


def test_provider_backoff_defaults_are_the_providers_own() -> None:
    cfg = parse_config(config_dict(), ENV).providers[0]
    assert (cfg.base_delay, cfg.max_delay, cfg.max_retry_after) == (1.0, 8.0, 60.0)


@pytest.mark.parametrize("max_tokens", [10**9, 10**15, 2**62, 2**80])
async def test_a_worst_case_beyond_the_whole_budget_is_refused_naming_max_tokens(max_tokens: int) -> None:
    service, providers = _service(5.0)
    try:
        key = service.keys.lookup(ENV["ACME_KEY"])
        assert key is not None
        request = GenerationRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=max_tokens)
        with pytest.raises(GatewayError) as info:
            service.reserve(key, service.targets["default"], request)
        error: Any = info.value.error
        assert (error.status, error.openai_code) == (429, "budget_exceeded")  # as any budget refusal
        assert f"max_tokens={max_tokens} is too large for tenant 'acme'" in error.message
        assert "whole monthly budget of 5.00 USD" in error.message
        assert "estimated_cost" not in error.message  # never the ledger's internal parameter
        assert providers["claude"].calls == 0
    finally:
        await service.close()


async def test_a_worst_case_within_the_budget_but_above_what_is_left_says_the_budget_is_exhausted() -> None:
    service, _ = _service(0.01)
    try:
        key = service.keys.lookup(ENV["ACME_KEY"])
        assert key is not None
        request = GenerationRequest(prompt="hi", max_tokens=10_000)
        assert service.reserve(key, service.targets["default"], request) is not None
        with pytest.raises(GatewayError) as info:
            service.reserve(key, service.targets["default"], request)
        assert info.value.error.status == 429
        assert "is exhausted" in info.value.error.message
    finally:
        await service.close()


@pytest.fixture
def _overrides() -> Iterator[None]:
    clear_price_overrides()
    yield
    clear_price_overrides()


def _custom_host_service() -> tuple[GatewayService, Target]:
    """A hard-budget tenant on a route whose one member is an OpenAI-compatible server "my-host";
    only "my-host" has the override (7 / 11 USD per Mtok), "openai" keeps the catalog's rate."""
    set_price_override("gpt-4o-mini", provider="my-host", input_per_mtok=7, output_per_mtok=11)
    host = OpenAIProvider(
        "gpt-4o-mini", api_key="k", base_url="http://127.0.0.1:9/v1", provider_name="my-host"
    )
    data = config_dict(budgets=[{"tenant": "acme", "monthly_limit_usd": 100.0, "hard_limit": True}])
    service = GatewayService(
        parse_config(data, ENV),
        providers={"claude": PricedProvider(), "gpt": host},
        tracker=CostTracker(storage="sqlite:///:memory:"),
    )
    return service, service.targets["cheap"]


@pytest.mark.usefixtures("_overrides")
async def test_the_quick_worst_case_prices_a_custom_provider_name_as_its_bill() -> None:
    service, target = _custom_host_service()
    try:
        key = service.keys.lookup(ENV["ACME_KEY"])
        assert key is not None
        request = GenerationRequest(prompt="price me", max_tokens=100)
        bound = prompt_byte_bound(request)
        assert bound is not None
        reservation = service.reserve(key, target, request)
        assert reservation is not None
        assert reservation.amount_usd == pytest.approx((bound * 7 + 100 * 11) / 1_000_000, rel=1e-9)
        service.tracker.release(reservation)
    finally:
        await service.close()


@pytest.mark.usefixtures("_overrides")
async def test_an_interrupted_streams_estimate_prices_a_custom_provider_name_as_its_bill() -> None:
    service, target = _custom_host_service()
    try:
        request = GenerationRequest(prompt="price me", max_tokens=100)
        usage = service.estimate_usage(target, "gpt", None, request, "one two three")
        assert usage.estimated
        assert usage.input_tokens > 0
        assert usage.output_tokens > 0
        expected = (usage.input_tokens * 7 + usage.output_tokens * 11) / 1_000_000
        assert usage.total_cost_usd == pytest.approx(expected, rel=1e-9)
    finally:
        await service.close()


class ScriptedStream(PricedProvider):
    """Streams ``words`` one chunk each; ends with a finish reason and usage only if asked."""

    def __init__(self, words: list[str], finish: bool = True, fail_first: bool = False) -> None:
        super().__init__()
        self.words, self.finish, self.fail_first = words, finish, fail_first
        self.closed = False

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        if self.fail_first:
            raise ProviderConnectionError("down", provider=self.name)
        try:
            for word in self.words:
                yield StreamChunk(word)
            if self.finish:
                yield StreamChunk("", "stop", price_usage(self.name, self.model_id, 7, len(self.words)))
        finally:
            self.closed = True


def _stream_service(provider: ScriptedStream, durable: bool = False) -> GatewayService:
    data = config_dict(budgets=[{"tenant": "acme", "monthly_limit_usd": 1.0, "hard_limit": True}])
    data["server"]["durable_replies"] = durable
    data["routes"][0]["providers"] = ["claude"]
    return GatewayService(
        parse_config(data, ENV),
        providers={"claude": provider, "gpt": PricedProvider()},
        tracker=CostTracker(storage="sqlite:///:memory:"),
    )


async def _records(service: GatewayService) -> list[Any]:
    await service.drain()
    return list(service.tracker.ledger.iter_records(0, 2**62))


@pytest.mark.parametrize("durable", [False, True], ids=["queued", "durable"])
async def test_an_open_stream_yields_the_chunks_after_its_first_and_books_the_reported_usage_once(
    durable: bool,
) -> None:
    service = _stream_service(ScriptedStream(["a ", "b ", "c"]), durable)
    key = service.keys.lookup(ENV["ACME_KEY"])
    assert key is not None
    request = GenerationRequest(prompt="hi", max_tokens=20)
    try:
        stream = await service.open_stream(key, service.targets["default"], request, "req_s1")
        assert (stream.first.text, stream.provider_name) == ("a ", "claude")
        assert [chunk.text async for chunk in stream] == ["b ", "c", ""]
        usage = await stream.finish()
        assert (stream.finish_reason, usage.output_tokens, usage.estimated) == ("stop", 3, False)
        await stream.close()
        await stream.close()
        [record] = await _records(service)
        assert (record.request_id, record.provider, record.output_tokens) == ("req_s1", "claude", 3)
        assert service.tracker.check_budget("acme").reserved_usd == 0
    finally:
        await service.close()


async def test_a_stream_that_fails_before_its_first_chunk_raises_and_releases_its_reservation() -> None:
    service = _stream_service(ScriptedStream([], fail_first=True))
    key = service.keys.lookup(ENV["ACME_KEY"])
    assert key is not None
    try:
        with pytest.raises(ProviderError):
            await service.open_stream(key, service.targets["default"], GenerationRequest(prompt="hi"), "r")
        assert await _records(service) == []
        assert service.tracker.check_budget("acme").reserved_usd == 0
    finally:
        await service.close()


async def test_an_abandoned_stream_closes_its_upstream_and_books_an_estimate_of_what_was_sent() -> None:
    provider = ScriptedStream(["one ", "two ", "three ", "four"])
    service = _stream_service(provider)
    key = service.keys.lookup(ENV["ACME_KEY"])
    assert key is not None
    try:
        target, request = service.targets["default"], GenerationRequest(prompt="hi")
        stream = await service.open_stream(key, target, request, "r1")
        await stream.__anext__()  # "two ": then the client goes away
        await stream.close()
        assert provider.closed
        [record] = await _records(service)
        assert record.estimated
        assert record.output_tokens == count_text_tokens("one two ", "gpt-4o-mini")  # what was sent
        assert service.tracker.check_budget("acme").reserved_usd == 0
    finally:
        await service.close()


async def test_a_stream_that_ends_without_a_finish_reason_is_interrupted_not_finished() -> None:
    from greenlang_llm._errors import StreamInterruptedError

    service = _stream_service(ScriptedStream(["one ", "two"], finish=False))
    key = service.keys.lookup(ENV["ACME_KEY"])
    assert key is not None
    try:
        target, request = service.targets["default"], GenerationRequest(prompt="hi")
        stream = await service.open_stream(key, target, request, "r1")
        with pytest.raises(StreamInterruptedError) as info:
            async for _ in stream:
                pass
        assert info.value.partial_text == "one two"
        await stream.close()
        [record] = await _records(service)
        assert record.estimated
    finally:
        await service.close()


def test_the_worst_case_covers_a_routes_context_window_fallbacks() -> None:
    """A prompt too long for the route may be answered by a dearer fallback: the reservation covers it."""
    from greenlang_llm.gateway.worst_case import worst_case
    from greenlang_llm.llm_router import LLMRouter
    from greenlang_llm.providers import FakeProvider

    cheap = FakeProvider("cheap-model", price_per_1k=(0.001, 0.002))
    dear = FakeProvider("dear-model", price_per_1k=(0.01, 0.03))
    fallback = Target("big", LLMRouter(), (("dear", dear),), False)
    route = Target("chat", LLMRouter(), (("cheap", cheap),), True, context_window_fallbacks=(fallback,))
    request = GenerationRequest(prompt="a long prompt " * 50, max_tokens=200)
    assert worst_case(route, request, None) == pytest.approx(dear.estimate_cost(request))
    assert worst_case(route, request, None) > cheap.estimate_cost(request)
    assert route.provider("dear") is dear  # an answer from the fallback is priced as its own
    assert route.provider(None) is cheap


async def test_context_window_fallbacks_share_the_requests_deadline_and_respect_the_keys_routes() -> None:
    """A fallback gets what is left of the deadline, not a new one; a route the key may not name is
    passed over (found in review)."""
    from greenlang_llm._errors import ContextWindowExceededError
    from greenlang_llm.gateway.keys import VirtualKey
    from greenlang_llm.llm_router import LLMRouter
    from greenlang_llm.providers import FakeProvider

    def target(name: str, fallbacks: tuple[Target, ...] = ()) -> Target:
        members = ((name, FakeProvider(name)),)
        return Target(name, LLMRouter(), members, True, context_window_fallbacks=fallbacks)

    big, bigger = target("big"), target("bigger")
    route = target("chat", (big, bigger))
    seen: list[tuple[str, float | None]] = []

    async def call(t: Target, request: GenerationRequest) -> str:
        seen.append((t.name, request.timeout))
        if t.name != "bigger":
            await asyncio.sleep(0.05)
            raise ContextWindowExceededError("too long", provider=t.name)
        return t.name

    request = GenerationRequest(prompt="long", timeout=5.0)
    assert await GatewayService._beyond_context(VirtualKey("acme", "web"), route, request, call) == "bigger"
    assert [name for name, _ in seen] == ["chat", "big", "bigger"]
    timeouts = [t or 0.0 for _, t in seen]
    assert timeouts[0] == 5.0
    assert 0 < timeouts[1] < 5.0 - 0.04
    assert 0 < timeouts[2] < timeouts[1] - 0.04

    seen.clear()
    limited = VirtualKey("acme", "web", routes=frozenset({"chat", "bigger"}))
    assert await GatewayService._beyond_context(limited, route, request, call) == "bigger"
    assert [name for name, _ in seen] == ["chat", "bigger"]  # "big" is not the key's to call

    seen.clear()
    with pytest.raises(ContextWindowExceededError):  # the deadline passed: no fallback is tried
        await GatewayService._beyond_context(
            VirtualKey("acme", "web"), route, GenerationRequest(prompt="long", timeout=0.01), call)
    assert [name for name, _ in seen] == ["chat"]
