"""Providers that cannot serve a request as asked are skipped; none left is a 400 naming why.

And the stream rules for the new shapes: a cut inside a tool call or a thinking block is not
continued with a prefill; text after a thinking block still is."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from greenlang_llm import GenerationRequest, LLMRouter, StreamInterruptedError, UnsupportedParamsError
from greenlang_llm.content import Delta
from greenlang_llm.providers import BaseLLMProvider
from greenlang_llm.providers.base_provider import GenerationResponse, ProviderHealth, StreamChunk, TokenUsage
from greenlang_llm.wire._common import FITS, Fit

TOOLS = [{"name": "lookup", "parameters": {"type": "object", "properties": {}}}]


class Scripted(BaseLLMProvider):
    """Plays chunks (text or deltas), then an optional error; refuses and drops what it is told."""

    name = "scripted"

    def __init__(self, model_id: str, chunks: Sequence[str | tuple[Delta, ...]] = ("ok",),
                 error: Exception | None = None, refuses: tuple[str, ...] = (),
                 drops: tuple[str, ...] = ()) -> None:
        super().__init__(model_id)
        self.chunks, self.error, self.refuses, self.drops = list(chunks), error, refuses, drops
        self.seen: list[GenerationRequest] = []

    def fit(self, request: GenerationRequest) -> Fit:
        if not request.rich:
            return FITS
        return Fit.of(request, list(self.drops), list(self.refuses))

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        self.seen.append(request)
        usage = TokenUsage(1, 1, 2)
        return GenerationResponse("ok", self.name, self.model_id, usage, "stop",
                                  dropped_params=self.fit(request).dropped)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        self.seen.append(request)
        for piece in self.chunks:
            if isinstance(piece, str):
                yield StreamChunk(piece)
            else:
                yield StreamChunk("".join(d.text for d in piece if d.kind == "text"), deltas=piece)
        if self.error is not None:
            raise self.error
        yield StreamChunk("", finish_reason="stop", usage=TokenUsage(1, 1, 2))

    async def health_check(self) -> ProviderHealth:
        return ProviderHealth(True)


def _router(*providers: Scripted) -> LLMRouter:
    router = LLMRouter(max_failovers=3)
    for i, provider in enumerate(providers):
        router.register_provider(f"p{i}", provider, priority=i)
    return router


async def test_a_provider_that_refuses_a_field_is_skipped_not_failed() -> None:
    unable = Scripted("a", refuses=("tools",))
    able = Scripted("b")
    router = _router(unable, able)
    response = await router.generate(GenerationRequest(prompt="hi", tools=TOOLS))
    assert response.model_id == "b"
    assert unable.seen == []
    assert len(able.seen) == 1
    p0 = router.get_metrics()["providers"]["p0"]
    assert p0["failed_requests"] == 0
    assert p0["total_requests"] == 0


async def test_no_provider_able_is_a_400_naming_each_field_and_provider() -> None:
    router = _router(Scripted("a", refuses=("tools", "logprobs")), Scripted("b", refuses=("logprobs",)))
    with pytest.raises(UnsupportedParamsError) as caught:
        await router.generate(GenerationRequest(prompt="hi", tools=TOOLS, logprobs=True))
    error = caught.value
    assert error.status_code == 400
    assert not error.retryable
    assert set(error.fields) == {"tools", "logprobs"}
    assert "tools (refused by p0)" in str(error)
    assert "logprobs (refused by p0, p1)" in str(error)


async def test_a_plain_request_never_asks_the_providers() -> None:
    refusing = Scripted("a", refuses=("everything",))
    router = _router(refusing)
    assert (await router.generate(GenerationRequest(prompt="hi"))).model_id == "a"


async def test_dropped_hints_are_named_and_drop_params_false_refuses_them() -> None:
    router = _router(Scripted("a", drops=("seed",)))
    response = await router.generate(GenerationRequest(prompt="hi", seed=7))
    assert response.dropped_params == ("seed",)
    with pytest.raises(UnsupportedParamsError, match="seed"):
        await router.generate(GenerationRequest(prompt="hi", seed=7, drop_params=False))


async def _drain(router: LLMRouter, request: GenerationRequest) -> list[StreamChunk]:
    return [chunk async for chunk in router.stream(request)]


CUT = StreamInterruptedError("cut", partial_text="")


async def test_a_stream_cut_inside_a_tool_call_is_not_continued() -> None:
    call = (Delta("tool_call", 0, id="call_1", name="lookup"), Delta("tool_arguments", 0, text='{"q":'))
    first = Scripted("a", [call], error=CUT)
    second = Scripted("b", ["never"])
    with pytest.raises(StreamInterruptedError):
        await _drain(_router(first, second), GenerationRequest(prompt="hi", tools=TOOLS))
    assert second.seen == []  # a partial call cannot be prefilled: nobody is asked to finish it


async def test_a_stream_cut_inside_a_thinking_block_is_not_continued() -> None:
    thinking = (Delta("thinking", 0, text="Let me"),)
    second = Scripted("b", ["never"])
    with pytest.raises(StreamInterruptedError):
        await _drain(_router(Scripted("a", [thinking], error=CUT), second),
                     GenerationRequest(prompt="hi", reasoning={"budget_tokens": 1024}))
    assert second.seen == []


async def test_text_after_a_thinking_block_is_continued_without_reasoning_and_with_every_field() -> None:
    thinking = (Delta("thinking", 0, text="Let me think"), Delta("signature", 0, text="sig"))
    first = Scripted("a", [thinking, "Hello"], error=CUT)
    second = Scripted("b", [" world"])
    request = GenerationRequest(prompt="hi", reasoning={"budget_tokens": 1024}, tools=TOOLS, top_p=0.5)
    chunks = await _drain(_router(first, second), request)
    assert "".join(c.text for c in chunks) == "Hello world"
    assert chunks[0].deltas == thinking
    (continued,) = second.seen
    assert continued.reasoning is None  # the caller has the thinking; a prefill cannot hold another
    assert continued.tools == TOOLS
    assert continued.top_p == 0.5
    assert continued.to_messages()[-1] == {"role": "assistant", "content": "Hello"}


async def test_a_failure_before_anything_was_sent_fails_over_with_the_same_request() -> None:
    first = Scripted("a", [], error=CUT)
    call = (Delta("tool_call", 0, id="call_1", name="lookup"), Delta("tool_arguments", 0, text="{}"))
    second = Scripted("b", [call])
    request = GenerationRequest(prompt="hi", tools=TOOLS)
    chunks = await _drain(_router(first, second), request)
    assert chunks[0].deltas == call
    assert second.seen == [request]


async def test_a_broken_call_that_sent_only_a_tool_call_still_books_its_output() -> None:
    call = (Delta("tool_call", 0, id="call_1", name="lookup"), Delta("tool_arguments", 0, text='{"q": "x"}'))
    with pytest.raises(StreamInterruptedError) as caught:
        await _drain(_router(Scripted("a", [call], error=CUT)), GenerationRequest(prompt="hi", tools=TOOLS))
    (part,) = caught.value.usage_parts
    assert part.usage.estimated
    assert part.usage.output_tokens > 0


async def test_a_continuation_never_drops_a_hint_the_first_provider_honoured() -> None:
    first = Scripted("a", ["Hello"], error=CUT)  # honours seed
    drops_seed = Scripted("b", [" world"], drops=("seed",))
    honours_seed = Scripted("c", [" world"])
    chunks = await _drain(_router(first, drops_seed, honours_seed), GenerationRequest(prompt="hi", seed=7))
    assert "".join(c.text for c in chunks) == "Hello world"
    assert drops_seed.seen == []  # the caller was told nothing was dropped: b may not continue
    assert len(honours_seed.seen) == 1


async def test_with_no_provider_able_to_continue_as_begun_the_caller_gets_the_cut() -> None:
    drops_seed = Scripted("b", [" world"], drops=("seed",))
    router = _router(Scripted("a", ["Hello"], error=CUT), drops_seed)
    with pytest.raises(StreamInterruptedError):
        await _drain(router, GenerationRequest(prompt="hi", seed=7))
    assert drops_seed.seen == []
