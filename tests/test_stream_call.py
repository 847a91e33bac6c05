"""StreamCall: each upstream stream is closed exactly once, whatever way its attempt ends."""

from __future__ import annotations

import pytest

from greenlang_llm import GenerationRequest, LLMRouter
from greenlang_llm import _errors as errors
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
