"""StreamGuard's clock: what counts as a stall and what does not, with a scripted upstream.

The guard keeps one timer armed per stream instead of one per delta, so these tests pin down the
cases that design could get wrong: a tighter idle limit after a loose first-token limit, a slow
*consumer* (not a stall), and a cancellation that is not the guard's (it must stay a cancellation).
Delays are small real ones, bounded by the configured limits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from streams_support import collect

from greenlang_llm._errors import ProviderTimeoutError, StreamInterruptedError
from greenlang_llm._types import GenerationRequest, StreamChunk
from greenlang_llm.providers.fake import FakeProvider
from greenlang_llm.providers.stream_guard import StreamGuard

REQUEST = GenerationRequest(prompt="hi")
IDLE = 0.2


class Scripted(FakeProvider):
    """Yields one word per entry of ``gaps`` after sleeping that long; ``closed`` once cleaned up."""

    def __init__(self, gaps: list[float]) -> None:
        super().__init__("scripted-model")
        self.gaps = gaps
        self.closed = False

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        try:
            for i, gap in enumerate(self.gaps):
                await asyncio.sleep(gap)
                yield StreamChunk(f" w{i}")
            yield StreamChunk("", finish_reason="stop")
        finally:
            self.closed = True


async def test_a_tight_idle_timeout_applies_after_a_loose_first_token_timeout() -> None:
    upstream = Scripted([0.0, 0.0, 30.0])
    guard = StreamGuard(upstream, first_token_timeout=30.0, idle_timeout=IDLE)
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(StreamInterruptedError) as info:
        await collect(guard.stream(REQUEST), received)
    elapsed = time.monotonic() - started
    assert received == [" w0", " w1"]
    assert info.value.partial_text == " w0 w1"
    assert IDLE <= elapsed < IDLE * 1.5
    assert upstream.closed


async def test_no_first_token_is_a_provider_timeout_so_the_router_can_fail_over() -> None:
    guard = StreamGuard(Scripted([30.0]), first_token_timeout=IDLE)
    with pytest.raises(ProviderTimeoutError, match="first_token_timeout"):
        async for _ in guard.stream(REQUEST):
            pass


async def test_a_slow_consumer_is_not_a_stalled_upstream() -> None:
    guard = StreamGuard(Scripted([0.0] * 4), first_token_timeout=IDLE, idle_timeout=IDLE)
    received = []
    async for chunk in guard.stream(REQUEST):
        received.append(chunk)
        await asyncio.sleep(IDLE * 1.5)  # the caller dawdles; the upstream is never waited on that long
    assert [c.text for c in received[:-1]] == [" w0", " w1", " w2", " w3"]
    assert received[-1].finish_reason == "stop"


async def test_a_cancellation_that_is_not_the_guards_stays_a_cancellation() -> None:
    upstream = Scripted([0.0, 30.0])
    guard = StreamGuard(upstream, first_token_timeout=30.0, idle_timeout=30.0)

    async def consume() -> None:
        async for _ in guard.stream(REQUEST):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert upstream.closed


async def test_many_waits_share_one_timer_and_a_late_stall_is_still_cut() -> None:
    gaps = [0.001] * 50 + [30.0]
    guard = StreamGuard(Scripted(gaps), first_token_timeout=IDLE, idle_timeout=IDLE)
    received: list[str] = []
    with pytest.raises(StreamInterruptedError):
        await collect(guard.stream(REQUEST), received)
    assert len(received) == 50
