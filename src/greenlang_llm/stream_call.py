"""One streamed router call: failover before the first token, continuation after it.

Split from ``llm_router`` because a stream has more states than a plain call:

1. **Failover window.** Until a chunk with content reaches the caller, any failure
   goes through the failover table exactly like ``generate`` (retry the same
   provider, fail over, or raise). Empty leading chunks are held back meanwhile.
2. **Continuation.** Once text reached the caller, a cut, a stall past the
   provider's ``idle_timeout`` or a broken event (anything the table would fail
   over on) starts a continuation when ``router.continue_on_failure`` is on: the
   next candidate gets the request plus the delivered text as an assistant
   prefill (``continuation.prefill_request``) and its text goes through a
   ``continuation.Seam`` so the caller sees one answer. The same chain (its
   attempt budget, deadline and breakers) keeps walking, so a continuation can
   itself be continued.
3. **Providers that refuse a prefill.** A provider known not to accept one
   (``supports_prefill`` False: set, or from ``prefill_support``'s table) is never sent
   one: its continuation request is the original request, and its fresh answer goes
   through a ``continuation.Resume``, which relays it only from the point the caller
   already has (when it begins with the delivered text) and otherwise marks it unusable:
   that call is closed, booked, and the walk moves on (nobody left: the caller gets the
   original cut). A continuation attempt answered with a plain 400
   (``InvalidRequestError``, not a context-window or policy error) before any text means
   the provider refuses the prefill after all: it is marked
   (``RouteEntry.rejects_prefill``), its breaker is not charged, its 400 is never what
   the caller sees, and the same provider is asked again at once without the prefill.
4. **End.** The final chunk carries the usage of every upstream call summed
   (``continuation.SplitUsage`` with one part per call) and names the provider
   and model that produced the last part. If no provider can finish, the caller
   gets ``StreamInterruptedError`` with exactly the text delivered, and the error
   carries ``usage_parts`` so a ledger can still book each call.
5. **Budget before each continuation.** A continuation pays the prompt again plus
   the prefill, which a budget reserved for one call does not cover. The caller's
   ``before_continuation`` hook (:data:`ContinuationHook`) is consulted with the
   provider and the exact continuation request before each continuation attempt
   (and only then); if it raises, no upstream call is made and the stream ends as
   interrupted (``BudgetExceededError`` → a message saying the budget refused the
   continuation, the refusal as ``__cause__``), never as a silent overshoot.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

from ._errors import (
    BudgetExceededError,
    ContentPolicyError,
    ContextWindowExceededError,
    InvalidRequestError,
    NotFoundError,
    StreamInterruptedError,
)
from ._types import GenerationRequest, StreamChunk, TokenUsage, UsagePart
from .circuit_breaker import BreakerTicket
from .content import Delta, output_pieces
from .continuation import Resume, Seam, combine, estimate_part, prefill_request
from .failover import FailoverChain, GiveUp, RetrySame, within
from .router_stats import RouteEntry

if TYPE_CHECKING:
    from .providers.base_provider import BaseLLMProvider

__all__ = ["ContinuationHook", "StreamCall"]

logger = logging.getLogger(__name__)

ContinuationHook: TypeAlias = "Callable[[BaseLLMProvider, GenerationRequest], Awaitable[None] | None]"
"""``before_continuation(provider, continuation_request)``: called (and awaited if it returns an
awaitable) before each continuation attempt; raising ``BudgetExceededError`` refuses it."""


def _is_prefill_rejection(error: BaseException) -> bool:
    """A plain 400 to a request another provider accepted without the prefill: the prefill is the cause."""
    if not isinstance(error, InvalidRequestError) or isinstance(
        error, ContextWindowExceededError | ContentPolicyError | NotFoundError
    ):
        return False
    return getattr(error, "status_code", 400) in (400, None)


class StreamCall:
    """The state of one ``router.stream`` call; :meth:`run` is the caller's generator.

    It talks to the router only through ``chain`` (the call's walk, which books every
    attempt and decides after each failure), so a stream and ``generate`` share one
    decision path. ``continue_on_failure`` is the router's setting of that name."""

    def __init__(
        self,
        chain: FailoverChain,
        request: GenerationRequest,
        before_continuation: ContinuationHook | None = None,
        continue_on_failure: bool = True,
    ) -> None:
        self.chain = chain
        self.request = request
        self.before_continuation = before_continuation
        self.continue_on_failure = continue_on_failure
        self.delivered: list[str] = []
        """Text the caller has received, across every upstream call."""
        self.parts: list[UsagePart] = []
        """Usage of finished or broken upstream calls before the current one."""
        self.cut: Exception | None = None
        """The first failure after text reached the caller (what the caller sees if nobody finishes)."""
        self.finished = False
        self.wait: float | None = None
        """Seconds to sleep before the chain's next step (a same-provider retry)."""
        self.began_dropped: tuple[str, ...] | None = None
        """The hints the provider that sent the first content dropped (None until then)."""
        self.unfinishable: str | None = None
        """Why a cut now cannot be continued with a prefill: the caller has part of a tool call (a
        call cannot be resumed half-way), or the answer was cut inside a thinking block (a prefill
        cannot hold one). None while the answer delivered so far ends in plain text."""

    async def run(self) -> AsyncGenerator[StreamChunk, None]:
        chain = self.chain
        while (step := chain.next()) is not None:
            entry, ticket = step
            restart = False
            upstream_request = self.request
            if self.cut is not None:
                if self._drops_more(entry):
                    chain.not_attempted(entry, ticket)  # it would drop what the caller was told it has
                    continue
                restart = _refuses_prefill(entry)
                if not restart:
                    text = "".join(self.delivered)
                    used = sum(p.usage.output_tokens for p in self.parts)
                    upstream_request = prefill_request(self.request, text, used)
                if self.before_continuation is not None:
                    await self._consult(entry, ticket, upstream_request)
            outcome = self._attempt(entry, ticket, upstream_request, restart)
            try:
                async for chunk in outcome:
                    yield chunk
            finally:
                await outcome.aclose()
            if self.finished:
                return
            if self.wait is not None:
                await chain.sleep(self.wait)
        if self.cut is None:
            raise chain.exhausted()
        chain.gave_up()
        raise self._interrupted()

    async def _attempt(
        self, entry: RouteEntry, ticket: BreakerTicket | None, upstream_request: GenerationRequest,
        restart: bool = False,
    ) -> AsyncGenerator[StreamChunk, None]:
        """One upstream call; sets ``finished`` / ``wait`` / ``cut`` for :meth:`run`, or raises.

        ``restart``: the call is the original request again (the provider refuses a prefill),
        relayed through a :class:`Resume` from the point the caller already has."""
        chain = self.chain
        self.wait = None
        continuing = self.cut is not None
        seam = Seam("".join(self.delivered)) if continuing and not restart else None
        resume = Resume("".join(self.delivered)) if restart else None
        started = chain.clock()
        upstream = entry.provider.stream(upstream_request)
        produced: list[str] = []  # this call's raw text, for its usage if it breaks
        sent = False  # did anything of this call reach the caller?
        held: list[StreamChunk] = []
        usage: TokenUsage | None = None
        model = entry.provider.model_id
        settled = False
        closed = False  # a failure closes the upstream before judging it; finally must not again
        try:
            while True:
                try:
                    chunk = await within(anext(upstream), chain.remaining())
                except StopAsyncIteration:
                    break
                chunk.provider = entry.name
                model = chunk.model_id or model
                produced.append(chunk.text)
                if chunk.deltas:  # tool calls and thinking are output too, should the call break
                    produced.extend(output_pieces(chunk.deltas))
                last = chunk.finish_reason is not None or chunk.usage is not None
                if seam is not None:
                    _refeed(chunk, seam.feed, seam.flush() if last else "")
                elif resume is not None:
                    _refeed(chunk, resume.feed)
                    if last:
                        resume.finish()
                    if resume.diverged:
                        usage = chunk.usage
                        break
                if chunk.usage is not None:
                    usage = chunk.usage
                    if self.parts:
                        chunk.usage = combine([*self.parts, UsagePart(entry.name, model, usage)])
                if not (chunk.text or chunk.deltas or last):
                    if not sent and not self.delivered:
                        held.append(chunk)  # nothing has reached the caller yet: keep failover open
                    continue
                for early in held:
                    yield early
                held.clear()
                if self.began_dropped is None:
                    fit = getattr(entry.provider, "fit", None)
                    self.began_dropped = fit(self.request).dropped if fit and self.request.rich else ()
                sent = True
                self.delivered.append(chunk.text)
                if chunk.deltas:
                    self._track(chunk)
                elif chunk.text and self.unfinishable == _THINKING:
                    self.unfinishable = None
                yield chunk
            if seam is not None and (rest := seam.flush()):
                sent = True
                self.delivered.append(rest)
                yield StreamChunk(rest, provider=entry.name, model_id=model)
            for early in held:
                yield early
            if resume is not None:
                resume.finish()
                if resume.diverged:
                    settled = closed = True
                    await _aclose(upstream)
                    self._unusable(entry, ticket, upstream_request, model, "".join(produced), usage)
                    return
            settled = True
        except asyncio.CancelledError:
            settled = True
            chain.cancelled(ticket)
            raise
        except Exception as raw:
            settled = closed = True
            await _aclose(upstream)
            self._failed(entry, ticket, raw, upstream_request, model, "".join(produced), sent, continuing)
            return
        finally:
            if not closed:
                await _aclose(upstream)
            if not settled:  # the caller stopped reading: no verdict on the provider
                chain.cancelled(ticket)
        chain.succeeded(entry, ticket, started, usage)
        self.finished = True

    def _failed(
        self,
        entry: RouteEntry,
        ticket: BreakerTicket | None,
        raw: Exception,
        upstream_request: GenerationRequest,
        model: str,
        produced: str,
        sent: bool,
        continuing: bool,
    ) -> None:
        chain = self.chain
        if produced:  # a broken call still used tokens: book them to this provider
            self._book_part(entry, model, _estimate(entry, upstream_request, model, produced))
        prefilled = upstream_request is not self.request  # a continuation that sent the prefill
        if prefilled and not sent and _is_prefill_rejection(raw):
            chain.prefill_rejected(entry, ticket, raw)  # its 400 is never the caller's error
            chain.again(entry)  # ask it once more, without the prefill (run() sees it refuses one)
            return
        if not self.delivered and not sent:  # still inside the failover window: the table decides
            decision = chain.attempt_failed(entry, ticket, raw)
            if isinstance(decision, GiveUp):
                decision.raise_from(raw)
            self.wait = decision.wait if isinstance(decision, RetrySame) else None
            return
        decision = chain.attempt_failed(entry, ticket, raw, delivered=True)
        if isinstance(decision, GiveUp) and decision.bug:
            chain.gave_up()
            raise decision.error  # a bug in a provider is not hidden by a continuation
        if self.cut is None:
            self.cut = decision.error
        if continuing and not sent:
            # a continuation that never produced: whatever its reason (an outage, a key this
            # provider rejects), the next candidate may still finish; only a policy refusal stops
            if isinstance(decision.error, ContentPolicyError):
                chain.gave_up()
                raise self._interrupted() from raw
            return
        if not self.continue_on_failure or isinstance(decision, GiveUp) or self.unfinishable:
            chain.gave_up()
            raise self._interrupted() from raw
        # else: run() continues on the next candidate with a prefill

    def _drops_more(self, entry: RouteEntry) -> bool:
        """Would ``entry`` leave out a hint the provider that began the answer honoured? Its
        header (``x-greenlang-dropped-params``) already told the caller which were dropped, so a
        continuation may not drop another: that provider is passed over."""
        request = self.request
        fit = getattr(entry.provider, "fit", None)
        if not request.rich or fit is None:
            return False
        if self.began_dropped is None:
            return False
        return not set(fit(request).dropped) <= set(self.began_dropped)

    def _track(self, chunk: StreamChunk) -> None:
        """Note what the caller now has beyond text (see ``unfinishable``)."""
        for delta in chunk.deltas:
            kind = delta.kind
            if kind in _CALL_KINDS:
                self.unfinishable = _TOOL_CALL
            elif kind in _THINKING_KINDS:
                if self.unfinishable is None:
                    self.unfinishable = _THINKING
            elif kind == "text" and delta.text and self.unfinishable == _THINKING:
                self.unfinishable = None

    def _unusable(
        self, entry: RouteEntry, ticket: BreakerTicket | None, upstream_request: GenerationRequest,
        model: str, produced: str, usage: TokenUsage | None,
    ) -> None:
        """A restarted answer that does not begin with what the caller has: book what it cost (the
        provider's usage if it reported one, else a local estimate) and let the walk move on."""
        self._book_part(entry, model, usage or _estimate(entry, upstream_request, model, produced))
        self.chain.unusable(entry, ticket, "RestartDiverged")

    def _book_part(self, entry: RouteEntry, model: str, usage: TokenUsage) -> None:
        """One upstream call that will not finish the answer: its usage is a part of the total."""
        self.parts.append(UsagePart(entry.name, model, usage))
        self.chain.book_cost(entry, usage.total_cost_usd)

    async def _consult(
        self, entry: RouteEntry, ticket: BreakerTicket | None, upstream_request: GenerationRequest
    ) -> None:
        """Ask ``before_continuation`` about this attempt; a refusal ends the stream, uncalled."""
        hook = self.before_continuation
        assert hook is not None
        try:
            result = hook(entry.provider, upstream_request)
            if inspect.isawaitable(result):
                await result
        except BaseException as refusal:
            self.chain.not_attempted(entry, ticket)  # no call was made: no verdict on the provider
            if not isinstance(refusal, Exception):
                raise  # cancelled while the hook waited
            self.chain.gave_up()
            raise self._refused(entry, refusal) from refusal

    def _refused(self, entry: RouteEntry, refusal: Exception) -> StreamInterruptedError:
        """The interruption the caller sees when the hook refused a continuation on ``entry``."""
        error = self._interrupted()
        if isinstance(refusal, BudgetExceededError):
            reason = f"the budget refused the continuation on {entry.name}: {refusal}"
        else:
            logger.error("before_continuation hook failed; the stream ends interrupted", exc_info=refusal)
            reason = f"the before_continuation hook failed: {type(refusal).__name__}: {refusal}"
        refused = StreamInterruptedError(
            f"{error.provider}: stream failed after it began and was not continued: {reason}",
            provider=error.provider,
            status_code=error.status_code,
            partial_text=error.partial_text,
        )
        refused.usage_parts = error.usage_parts
        return refused

    def _interrupted(self) -> StreamInterruptedError:
        cause = self.cut
        assert cause is not None
        partial = "".join(self.delivered)
        first = next((name for name, e in self.chain.errors if e is cause), "upstream")
        if isinstance(cause, StreamInterruptedError) and cause.partial_text == partial:
            cause.provider = first
            error = cause
        else:
            error = StreamInterruptedError(
                f"{first}: stream failed after it began: {type(cause).__name__}: {cause}",
                provider=first,
                status_code=getattr(cause, "status_code", None),
                partial_text=partial,
            )
        error.usage_parts = list(self.parts)
        return error


_TOOL_CALL = "a tool call"
_THINKING = "a thinking block"
_CALL_KINDS = frozenset({"tool_call", "tool_arguments"})
_THINKING_KINDS = frozenset({"thinking", "signature", "redacted_thinking"})


def _refeed(chunk: StreamChunk, feed: Callable[[str], str], tail: str = "") -> None:
    """Pass a continued call's text through ``feed`` (a seam or a resume), then add ``tail``; in a
    chunk with deltas each text delta is fed in order, so the deltas say what ``text`` says."""
    if not chunk.deltas:
        chunk.text = feed(chunk.text) + tail
        return
    deltas = [Delta(d.kind, d.index, feed(d.text), d.id, d.name, d.value) if d.kind == "text" else d
              for d in chunk.deltas]
    if tail:
        deltas.append(Delta("text", -1, tail))
    chunk.deltas = tuple(deltas)
    chunk.text = "".join(d.text for d in deltas if d.kind == "text")


def _estimate(entry: RouteEntry, request: GenerationRequest, model: str, produced: str) -> TokenUsage:
    """A call's usage from local token counts (marked estimated), priced under the id its finished
    calls are billed under (``catalog_id``; the router takes any object with the provider methods,
    and one that does not subclass ``BaseLLMProvider`` is billed under its ``name``)."""
    try:
        prompt: int | None = entry.provider.count_tokens(request)
    except Exception:
        prompt = None
    catalog_id = getattr(entry.provider, "catalog_id", None) or entry.provider.name
    return estimate_part(catalog_id, model, request, produced, prompt)


def _refuses_prefill(entry: RouteEntry) -> bool:
    """Learned from a 400, or known (``supports_prefill`` False; a provider that does not subclass
    ``BaseLLMProvider`` and says nothing is unknown: try the prefill)."""
    return entry.rejects_prefill or getattr(entry.provider, "supports_prefill", None) is False


async def _aclose(stream: AsyncIterator[StreamChunk]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
