"""The per-error-class failover table (failover.FAILOVER_TABLE), row by row.

First the pure table (error → verdict), then each row against the simulator, counted by the
simulator's requests per model: providers do not retry on their own (``max_retries=0``) and the
router may retry the same provider (``same_provider_retries``), so every upstream request is the
table's decision. Sleeps are injected (recorded, not slept).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from greenlang_llm import LLMRouter, pricing
from greenlang_llm import _errors as errors
from greenlang_llm._types import GenerationRequest
from greenlang_llm.failover import Verdict, decide
from greenlang_llm.providers.anthropic_provider import AnthropicProvider
from greenlang_llm.providers.openai_provider import OpenAIProvider
from greenlang_llm.simulator import Simulator, SimulatorConfig
from greenlang_llm.simulator.faults import FaultRule

KEY = "sk-test-canary"
REQ = GenerationRequest(prompt="Which way does the river run?", max_tokens=50)


def http(status: int, body: object = None, **headers: str) -> BaseException:
    return errors.error_from_http(status, headers, body, "p")


@pytest.mark.parametrize(("error", "verdict"), [
    (http(429, None, **{"retry-after": "2"}), Verdict.RETRY_AFTER),
    (http(429), Verdict.FAILOVER),
    (http(429, {"error": {"type": "insufficient_quota", "code": "insufficient_quota", "message": "q"}},
          **{"retry-after": "2"}), Verdict.FAILOVER),
    (http(500), Verdict.RETRY_BACKOFF),
    (http(503), Verdict.RETRY_BACKOFF),
    (http(529), Verdict.RETRY_BACKOFF),
    (errors.ProviderConnectionError("reset"), Verdict.RETRY_BACKOFF),
    (ConnectionResetError(), Verdict.RETRY_BACKOFF),
    (errors.ProviderTimeoutError("first token"), Verdict.FAILOVER),
    (TimeoutError(), Verdict.FAILOVER),
    (errors.StreamInterruptedError("stall", partial_text="a b"), Verdict.FAILOVER),
    (errors.StreamInterruptedError("bad", retryable=False, partial_text=""), Verdict.RETURN),
    (errors.ContextWindowExceededError("too long"), Verdict.FAILOVER_LARGER_CONTEXT),
    (errors.ContentPolicyError("no"), Verdict.RETURN),
    (http(400), Verdict.RETURN),
    (http(401), Verdict.RETURN),
    (http(403), Verdict.RETURN),
    (http(404), Verdict.RETURN),
    (errors.BudgetExceededError("over", "t", 1.0), Verdict.RETURN),
    (KeyError("bug"), Verdict.RETURN),
])
def test_each_error_class_has_its_verdict(error: BaseException, verdict: Verdict) -> None:
    assert decide(error) is verdict


# ---------------------------------------------------------------- against the simulator


@pytest.fixture(autouse=True)
def prices() -> AsyncIterator[None]:  # type: ignore[misc]
    for model in ("first", "second", "third"):
        pricing.set_price_override(model, input_per_mtok=1, output_per_mtok=2)
    pricing.set_price_override("small", input_per_mtok=1, output_per_mtok=2, context_window=100)
    pricing.set_price_override("tiny", input_per_mtok=1, output_per_mtok=2, context_window=50)
    pricing.set_price_override("large", input_per_mtok=1, output_per_mtok=2, context_window=1000)
    yield
    pricing.clear_price_overrides()


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(seed=1)) as simulator:
        yield simulator


class Sleeps:
    """Injected sleep: records each wait and advances the router's clock by it."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def router(sim: Simulator, models: tuple[str, ...] = ("first", "second"), *, retries: int = 2,
           sleeps: Sleeps | None = None, timeout: float = 0.5) -> LLMRouter:
    sleeps = sleeps or Sleeps()
    r = LLMRouter(same_provider_retries=retries, sleep=sleeps, clock=sleeps.clock)
    for i, model in enumerate(models):
        r.register_provider(model, OpenAIProvider(
            model, api_key=KEY, max_retries=0, timeout=timeout, base_url=sim.openai_base_url,
            first_token_timeout=timeout), priority=i)
    return r


def calls(sim: Simulator, model: str) -> int:
    return int(sim.stats.by_model.get(model, 0))


async def test_429_with_retry_after_that_fits_the_deadline_retries_the_same_provider(sim: Simulator) -> None:
    sim.faults.add(FaultRule("rate_limit", model="first", retry_after=0.25, times=1))
    sleeps = Sleeps()
    async with router(sim, sleeps=sleeps) as r:
        response = await r.generate(GenerationRequest(prompt="hi", timeout=10))
    assert response.provider == "first"
    assert (calls(sim, "first"), calls(sim, "second")) == (2, 0)
    assert sleeps.waits == [pytest.approx(0.25)]


async def test_429_with_retry_after_past_the_deadline_fails_over_without_sleeping(sim: Simulator) -> None:
    sim.faults.add(FaultRule("rate_limit", model="first", retry_after=30, times=1))
    sleeps = Sleeps()
    async with router(sim, sleeps=sleeps) as r:
        response = await r.generate(GenerationRequest(prompt="hi", timeout=10))
    assert response.provider == "second"
    assert (calls(sim, "first"), calls(sim, "second")) == (1, 1)
    assert sleeps.waits == []


@pytest.mark.parametrize("kind", ["http_500", "http_503", "reset"])
async def test_5xx_and_resets_retry_the_same_provider_with_backoff_then_fail_over(
        sim: Simulator, kind: str) -> None:
    sim.faults.add(FaultRule(kind, model="first"))
    sleeps = Sleeps()
    async with router(sim, sleeps=sleeps, retries=2) as r:
        response = await r.generate(REQ)
    assert response.provider == "second"
    assert sim.stats.faults[kind] == 3  # the first try and two retries
    assert calls(sim, "second") == 1
    assert len(sleeps.waits) == 2
    assert all(w > 0 for w in sleeps.waits)
    assert r.get_metrics()["global"]["failover_count"] == 1


async def test_529_on_the_anthropic_api_retries_then_fails_over(sim: Simulator) -> None:
    sim.faults.add(FaultRule("overloaded", model="first"))
    sleeps = Sleeps()
    r = LLMRouter(same_provider_retries=1, sleep=sleeps, clock=sleeps.clock)
    for i, model in enumerate(("first", "second")):
        provider = AnthropicProvider(model, api_key=KEY, max_retries=0, base_url=sim.base_url)
        r.register_provider(model, provider, priority=i)
    async with r:
        assert (await r.generate(REQ)).provider == "second"
    assert (sim.stats.faults["overloaded"], calls(sim, "second")) == (2, 1)


async def test_retries_stop_when_the_next_backoff_would_pass_the_deadline(sim: Simulator) -> None:
    sim.faults.add(FaultRule("http_500", model="first"))
    sleeps = Sleeps()
    async with router(sim, sleeps=sleeps, retries=50) as r:
        response = await r.generate(GenerationRequest(prompt="hi", timeout=3.0))
    assert response.provider == "second"
    assert sum(sleeps.waits) < 3.0
    assert 1 < sim.stats.faults["http_500"] < 51


@pytest.mark.parametrize("stream", [False, True])
async def test_no_response_or_a_slow_first_token_fails_over_at_once_without_retry(
        sim: Simulator, stream: bool) -> None:
    sim.faults.add(FaultRule("slow", model="first", delay=20))
    async with router(sim, timeout=0.3) as r:
        if stream:
            chunks = [c async for c in r.stream(REQ)]
            provider = chunks[-1].provider
        else:
            provider = (await r.generate(REQ)).provider
    assert provider == "second"
    assert (sim.stats.faults["slow"], calls(sim, "second")) == (1, 1)  # a hung request is never answered


async def test_a_stall_is_not_retried_on_the_same_provider(sim: Simulator) -> None:
    sim.faults.add(FaultRule("stall", model="first", after=0, delay=20))
    async with router(sim, timeout=0.3) as r:
        chunks = [c async for c in r.stream(REQ)]
    assert chunks[-1].provider == "second"
    assert (sim.stats.faults["stall"], calls(sim, "second")) == (1, 1)


async def test_context_length_skips_known_smaller_windows_and_tries_unknown_ones(sim: Simulator) -> None:
    # small (100) refuses; tiny (50) is known to be no larger: skipped; second (unknown) is tried
    # and refuses too; large (1000) answers. Nobody sees the prompt twice.
    sim.faults.add(FaultRule("context_length", model="small"))
    sim.faults.add(FaultRule("context_length", model="second"))
    async with router(sim, ("small", "tiny", "second", "large")) as r:
        response = await r.generate(REQ)
    assert response.provider == "large"
    assert [calls(sim, m) for m in ("small", "tiny", "second", "large")] == [1, 0, 1, 1]


@pytest.mark.parametrize("stream", [False, True])
async def test_context_length_fails_over_to_a_fallback_of_unknown_window(
        sim: Simulator, stream: bool) -> None:
    sim.faults.add(FaultRule("context_length", model="small"))
    async with router(sim, ("small", "second")) as r:
        if stream:
            provider = [c async for c in r.stream(REQ)][-1].provider
        else:
            provider = (await r.generate(REQ)).provider
    assert provider == "second"
    assert (calls(sim, "small"), calls(sim, "second")) == (1, 1)


async def test_context_length_never_resends_the_prompt_to_the_same_model(sim: Simulator) -> None:
    # two registrations of one upstream model (say two keys): the second is the same model
    sim.faults.add(FaultRule("context_length", model="small"))
    r = router(sim, ("small", "second"))
    r.register_provider("small-again", OpenAIProvider(
        "small", api_key=KEY, max_retries=0, timeout=0.5, base_url=sim.openai_base_url), priority=0)
    async with r:
        response = await r.generate(REQ)
    assert response.provider == "second"
    assert (calls(sim, "small"), calls(sim, "second")) == (1, 1)


async def test_context_length_with_only_known_smaller_windows_left_is_returned(sim: Simulator) -> None:
    sim.faults.add(FaultRule("context_length", model="small"))
    async with router(sim, ("small", "tiny")) as r:
        with pytest.raises(errors.ContextWindowExceededError):
            await r.generate(REQ)
    assert (calls(sim, "small"), calls(sim, "tiny")) == (1, 0)


@pytest.mark.parametrize(("kind", "error"), [
    ("content_policy", errors.ContentPolicyError),
    ("bad_request", errors.InvalidRequestError),
    ("auth", errors.AuthenticationError),
    ("not_found", errors.NotFoundError),
])
async def test_client_and_policy_errors_are_returned_at_once(
        sim: Simulator, kind: str, error: type[Exception]) -> None:
    sim.faults.add(FaultRule(kind, model="first"))
    async with router(sim) as r:
        with pytest.raises(error):
            await r.generate(REQ)
    assert (calls(sim, "first"), calls(sim, "second")) == (1, 0)
