"""StreamCall: each upstream stream is closed exactly once, whatever way its attempt ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from greenlang_llm import GenerationRequest, LLMRouter
from greenlang_llm import _errors as errors
from greenlang_llm.pricing import clear_price_overrides, set_price_override
from greenlang_llm.providers import BaseLLMProvider, FakeProvider
from greenlang_llm.providers.base_provider import GenerationResponse, ProviderHealth, StreamChunk

REQ = GenerationRequest(prompt="hello world")


class Upstream:
    """An upstream stream that plays chunks then an optional error, and counts ``aclose``."""

    def __init__(self, texts: list[str], error: Exception | None) -> None:
        self.texts = list(texts)
        self.error = error
        self.closes = 0

    def __aiter__(self) -> Upstream:
        return self

    async def __anext__(self) -> StreamChunk:
        if self.closes:
            raise RuntimeError("read after close")
        if self.texts:
            return StreamChunk(self.texts.pop(0))
        if self.error is not None:
            raise self.error
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closes += 1


class Counted(BaseLLMProvider):
    name = "fake"

    def __init__(self, texts: list[str], error: Exception | None = None) -> None:
        super().__init__("m")
        self.texts, self.error = texts, error
        self.upstreams: list[Upstream] = []

    def stream(self, request: GenerationRequest) -> Upstream:
        upstream = Upstream(self.texts, self.error)
        self.upstreams.append(upstream)
        return upstream

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        raise NotImplementedError

    async def health_check(self) -> ProviderHealth:
        return ProviderHealth(True, 0.0, None)


def _router(**kwargs: object) -> LLMRouter:
    return LLMRouter(clock=lambda: 100.0, **kwargs)  # type: ignore[arg-type]


async def test_a_stream_that_fails_before_text_is_closed_once_then_fails_over() -> None:
    router = _router()
    first = Counted([], errors.ServiceUnavailableError("down", status_code=503))
    router.register_provider("a", first)
    router.register_provider("b", FakeProvider(default_text="one two"))
    assert "".join([c.text async for c in router.stream(REQ)]) == "one two"
    assert [u.closes for u in first.upstreams] == [1]


async def test_a_stream_cut_after_text_is_closed_once() -> None:
    router = _router(continue_on_failure=False)
    cut = Counted(["one ", "two"], errors.StreamInterruptedError("cut", partial_text="one two"))
    router.register_provider("a", cut)
    with pytest.raises(errors.StreamInterruptedError):
        async for _ in router.stream(REQ):
            pass
    assert [u.closes for u in cut.upstreams] == [1]


async def test_a_finished_stream_is_closed_once() -> None:
    router = _router()
    done = Counted(["one ", "two"])
    router.register_provider("a", done)
    assert "".join([c.text async for c in router.stream(REQ)]) == "one two"
    assert [u.closes for u in done.upstreams] == [1]


@pytest.fixture
def _overrides() -> Iterator[None]:
    clear_price_overrides()
    yield
    clear_price_overrides()


@pytest.mark.usefixtures("_overrides")
async def test_a_broken_streams_tokens_are_priced_under_the_providers_catalog_id() -> None:
    # Only "my-host" has this price: the id the provider's finished calls are billed under.
    set_price_override("gpt-4.1-mini", provider="my-host", input_per_mtok=7, output_per_mtok=11)
    router = _router(continue_on_failure=False)
    host = FakeProvider(
        "gpt-4.1-mini", default_text="one two three", stream_fail_after=2, provider_name="my-host"
    )
    router.register_provider("a", host)
    with pytest.raises(errors.StreamInterruptedError) as info:
        async for _ in router.stream(REQ):
            pass
    (part,) = info.value.usage_parts
    usage = part.usage
    assert usage.estimated
    assert (usage.input_tokens, usage.output_tokens) == (host.count_tokens(REQ), 2)
    assert usage.total_cost_usd == pytest.approx((usage.input_tokens * 7 + 2 * 11) / 1_000_000, rel=1e-9)


async def test_a_provider_that_does_not_subclass_the_base_is_still_continued_and_charged() -> None:
    """The router takes any object with the provider methods; a broken stream of one is priced under
    its name and judged like any other (found in review: it crashed on a missing catalog_id)."""

    class Duck:
        name = "openai"
        model_id = "gpt-4o-mini"

        def count_tokens(self, request: GenerationRequest) -> int:
            return 3

        async def generate(self, request: GenerationRequest) -> GenerationResponse:
            raise NotImplementedError

        async def stream(self, request: GenerationRequest):  # type: ignore[no-untyped-def]
            yield StreamChunk("a ")
            raise errors.StreamInterruptedError("cut", provider="openai", partial_text="a ")

        async def close(self) -> None:
            pass

    router = LLMRouter(circuit_breaker_threshold=1)
    router.register_provider("duck", Duck())  # type: ignore[arg-type]
    with pytest.raises(errors.StreamInterruptedError) as info:
        async for _ in router.stream(REQ):
            pass
    assert info.value.partial_text == "a "
    assert [p.provider for p in info.value.usage_parts] == ["duck"]
    metrics = router.get_metrics()
    assert metrics["global"]["failed_requests"] == 1
    assert metrics["providers"]["duck"]["circuit_breaker_state"] == "open"


async def test_a_provider_known_to_refuse_a_prefill_gets_the_original_request_and_the_hook_sees_it() -> None:
    primary = FakeProvider("m", ["a b c d e f"], stream_fail_after=3)
    fallback = FakeProvider("m", ["a b c d e f"], supports_prefill=False)
    consulted: list[GenerationRequest] = []
    router = _router()
    router.register_provider("p", primary, priority=1)
    router.register_provider("f", fallback, priority=2)
    chunks = [c async for c in router.stream(REQ, before_continuation=lambda _, r: consulted.append(r))]
    assert "".join(c.text for c in chunks) == "a b c d e f"
    assert fallback.requests == [REQ] == consulted  # no prefill: the original request, as the hook saw it


async def test_a_prefill_400_restarts_the_same_provider_without_the_prefill() -> None:
    primary = FakeProvider("m", ["a b c d e f"], stream_fail_after=3)
    refusal = errors.InvalidRequestError("assistant prefill not supported", status_code=400)
    fallback = FakeProvider("m", [refusal, "a b c d e f"])
    router = _router()
    router.register_provider("p", primary, priority=1)
    router.register_provider("f", fallback, priority=2)
    chunks = [c async for c in router.stream(REQ)]
    assert "".join(c.text for c in chunks) == "a b c d e f"
    first, second = fallback.requests
    assert first.to_messages()[-1] == {"role": "assistant", "content": "a b c"}
    assert second is REQ
    metrics = router.get_metrics()
    assert metrics["providers"]["f"]["errors_by_type"] == {"PrefillRejected": 1}
    assert metrics["global"]["failover_count"] == 1  # the restart on the same provider is not a failover
