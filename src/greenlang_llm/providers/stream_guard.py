"""StreamGuard: one provider seen through a route's stream settings (timeouts, held-back tokens).

Providers are shared by every route that lists them, but a route may want its
streams held to tighter limits than the provider's own: an interactive route
gives up on a silent upstream after 2 s, a batch route waits 30. Wrapping the
shared provider per route keeps one connection pool and one set of provider
settings, while each route's router sees a provider that:

- raises ``ProviderTimeoutError`` when no text arrives within
  ``first_token_timeout`` (before anything reached the caller, so the router
  fails over to the next provider);
- raises ``StreamInterruptedError`` (with the text already passed on) when two
  deltas are more than ``idle_timeout`` apart, and closes the upstream stream;
- with ``buffer_first_tokens = N`` holds back the first N text deltas, so a
  failure among them happens before the router has handed anything on and still
  fails over; the held deltas are released together once N arrived (or the
  stream ended). A delta is one chunk of the inner provider's stream, which for
  the HTTP providers is the text of one upstream network read (the deltas that
  arrived together, joined), so holding N deltas holds at least N tokens.

``generate`` and everything else pass straight through to the wrapped provider.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .._errors import ProviderTimeoutError, StreamInterruptedError
from .._types import GenerationRequest, GenerationResponse, ProviderHealth, StreamChunk
from .base_provider import BaseLLMProvider

if TYPE_CHECKING:
    from ..wire._common import Fit

__all__ = ["StreamGuard"]


def _positive(label: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not value > 0:
        raise ValueError(f"{label} must be a number of seconds > 0, got {value!r}")
    return float(value)


class StreamGuard(BaseLLMProvider):
    """``inner`` with per-route stream limits; see the module docstring."""

    def __init__(
        self,
        inner: BaseLLMProvider,
        *,
        first_token_timeout: float | None = None,
        idle_timeout: float | None = None,
        buffer_first_tokens: int = 0,
    ) -> None:
        if isinstance(buffer_first_tokens, bool) or not isinstance(buffer_first_tokens, int) \
                or buffer_first_tokens < 0:
            raise ValueError(f"buffer_first_tokens must be an integer >= 0, got {buffer_first_tokens!r}")
        self.inner = inner
        self.model_id = inner.model_id
        # ``name`` is the wrapped provider's (pricing and metrics key on it); it is a ClassVar
        # on the base class, so it is set on the instance without going through the type
        object.__setattr__(self, "name", inner.name)
        self.first_token_timeout = _positive("first_token_timeout", first_token_timeout)
        self.idle_timeout = _positive("idle_timeout", idle_timeout)
        self.buffer_first_tokens = buffer_first_tokens

    def __repr__(self) -> str:
        return (
            f"StreamGuard({self.inner!r}, first_token_timeout={self.first_token_timeout}, "
            f"idle_timeout={self.idle_timeout}, buffer_first_tokens={self.buffer_first_tokens})"
        )

    @property
    def catalog_id(self) -> str:
        """The wrapped provider's: a guarded provider bills as itself."""
        return self.inner.catalog_id

    def __getattr__(self, name: str) -> Any:  # base_url, max_retries, ...: the inner provider's
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def fit(self, request: GenerationRequest) -> Fit:
        return self.inner.fit(request)

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        return await self.inner.generate(request)

    async def health_check(self) -> ProviderHealth:
        return await self.inner.health_check()

    def count_tokens(self, request: GenerationRequest) -> int:
        return self.inner.count_tokens(request)

    def estimate_cost(self, request: GenerationRequest) -> float:
        return self.inner.estimate_cost(request)

    async def close(self) -> None:
        await self.inner.close()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        upstream = self.inner.stream(request)
        held: list[StreamChunk] = []
        delivered: list[str] = []
        texts = 0
        releasing = self.buffer_first_tokens == 0
        watch = _Watchdog(asyncio.get_running_loop())
        try:
            while True:
                limit = self.first_token_timeout if texts == 0 else self.idle_timeout
                try:
                    if limit is None:
                        chunk = await anext(upstream)
                    else:
                        watch.begin(limit)
                        try:
                            chunk = await anext(upstream)
                        finally:
                            watch.end()
                except StopAsyncIteration:
                    break
                except asyncio.CancelledError:
                    if not watch.expired():  # someone else's cancellation: theirs to handle
                        raise
                    raise self._timeout(texts, limit, delivered, released=bool(delivered)) from None
                if chunk.text or chunk.deltas:
                    texts += 1
                if not releasing:
                    held.append(chunk)
                    if texts < self.buffer_first_tokens and chunk.finish_reason is None:
                        continue
                    releasing = True
                    for early in held:
                        delivered.append(early.text)
                        yield early
                    held.clear()
                    continue
                delivered.append(chunk.text)
                yield chunk
            for early in held:  # the stream ended inside the buffer: all of it, in order
                yield early
        finally:
            watch.close()
            close = getattr(upstream, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    def _timeout(self, texts: int, limit: float | None, delivered: list[str], released: bool) -> Exception:
        """Nothing handed on yet: a timeout (fail over). Text handed on: an interrupted stream."""
        if not released:
            what = "first_token_timeout" if texts == 0 else "idle_timeout (while holding the first tokens)"
            return ProviderTimeoutError(
                f"{self.name}: no stream data within {limit:g}s ({what})", provider=self.name
            )
        partial = "".join(delivered)
        return StreamInterruptedError(
            f"{self.name}: stream stalled: no data for {limit:g}s (idle timeout) "
            f"after {len(partial)} characters",
            provider=self.name, partial_text=partial,
        )


class _Watchdog:
    """``asyncio.timeout`` for many short waits, without a timer per wait.

    A fast stream waits for its upstream once per delta; arming and cancelling a
    timer each time cost as much as parsing the delta. Here one timer stays armed:
    a wait only records its due time (and re-arms only when it is due earlier than
    the armed timer); when the timer fires early it re-arms for the current wait,
    and when a wait is really overdue it cancels the waiting task, which
    ``expired()`` then tells apart from any other cancellation (as
    ``asyncio.timeout`` does, by the task's cancel count).
    """

    __slots__ = ("_base", "_due", "_fired", "_handle", "_loop", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._due = 0.0
        self._base = 0
        self._fired = False

    def begin(self, limit: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task, self._base, self._fired = task, task.cancelling(), False
        self._due = due = self._loop.time() + limit
        handle = self._handle
        if handle is None or handle.when() > due:
            if handle is not None:
                handle.cancel()
            self._handle = self._loop.call_at(due, self._check)

    def end(self) -> None:
        self._task = None

    def _check(self) -> None:
        self._handle = None
        task = self._task
        if task is None:  # not waiting now: the next wait arms again
            return
        if self._loop.time() + 0.001 >= self._due:  # the loop may run a timer a hair early
            self._fired = True
            task.cancel()
        else:
            self._handle = self._loop.call_at(self._due, self._check)

    def expired(self) -> bool:
        """After a CancelledError: was it ours (and no other cancellation is pending)?"""
        if not self._fired:
            return False
        self._fired = False
        task = asyncio.current_task()
        return task is not None and task.uncancel() <= self._base

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._task = None
