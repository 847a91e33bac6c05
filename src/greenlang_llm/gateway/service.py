"""The request path, straight down: key → route → budget reservation → router → ledger.

``GatewayService`` owns everything a request touches (providers, one ``LLMRouter`` per
target, the key store, the ``CostTracker``, metrics) and knows nothing about HTTP or either
API's JSON: ``handler.py`` speaks HTTP (auth, body, headers, rendering, error responses),
this module decides, for plain and streamed requests alike (``generate``, ``open_stream``).
Three choices matter for correctness and speed:

- **Reserve the worst case before calling.** The reservation is the most
  expensive member of the route with the request's ``max_tokens`` (failover may
  land on any member; ``worst_case.py``), so concurrent requests can never push a hard
  budget past its limit; the actual usage replaces it once the record is durable. A stream
  continued on another provider pays its prompt again: each continuation reserves its own
  worst case first (``continuation_budget.py``) or is refused. A tenant without a hard
  budget (known at start: config or ledger) would get a reservation that holds nothing, so
  the estimate (a token count per member) and the call are skipped.
- **Group-commit the ledger** (``ledger_writer.py``): finished requests queue their record
  and one flush writes many in one transaction — on the event loop when the tracker's writes
  are quick (``CostTracker.quick_writes``: the default local SQLite ledger), else on the
  writer's thread (PostgreSQL, Redis state, ``synchronous=full``). Each reservation is
  released only after its record is durable, so budgets err on the safe side, never over.
  Under ``durable_replies`` an answer (a plain reply, a stream's final event) is given only
  once its record is durable, and a record that cannot be written is a 503.
- **Exactly one ledger entry per request.** Each request has one ``Settlement``
  (``settlement.py``), booked or released once by whoever finishes the request: ``generate``
  for a plain reply, ``OpenStream.finish``/``close`` for a stream (completed, failed or
  abandoned) — actual usage, an estimate for tokens delivered without a final usage, or a
  release when nothing was produced. A continued stream books one record per upstream call.

Streams: ``open_stream`` reserves, opens the router's stream and pulls its first chunk before
returning, so every failure up to the first byte is still an HTTP error; the ``OpenStream``
it returns is pulled chunk by chunk (one plain coroutine per chunk, no generator layer), keeps
what its settlement needs (the text delivered, the usage, the finish reason), and is closed
exactly once by the handler, which cancels the upstream call and books what happened.

Beside this module: ``targets.py`` builds the providers and one ``Target`` (router) per route
and model id, ``worst_case.py`` prices a request's worst case and words a budget's refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from .._errors import (
    AllProvidersFailedError,
    AuthenticationError,
    BudgetExceededError,
    ContextWindowExceededError,
    InvalidRequestError,
    ProviderError,
    StreamInterruptedError,
)
from .._types import GenerationRequest, GenerationResponse, StreamChunk, TokenUsage
from ..content import output_pieces
from ..continuation import combine
from .config import GatewayConfig
from .errors import ApiError, bad_request, model_not_found, rate_limited
from .keys import KeyStore, VirtualKey
from .ledger_writer import LedgerWriter
from .metrics import Metrics
from .settlement import Settlement
from .targets import Target, build_provider, build_targets
from .worst_case import budget_error, budget_exhausted_message, never_fits, prompt_byte_bound, worst_case

if TYPE_CHECKING:
    from ..cost_tracker import CostTracker, Reservation
    from ..providers.base_provider import BaseLLMProvider
    from ..state.redis_shared import SharedState
    from .continuation_budget import ContinuationBudget

__all__ = ["GatewayError", "GatewayService", "OpenStream", "new_request_id"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class GatewayError(Exception):
    """An answer decided before (or instead of) an upstream call; rendered in the caller's shape."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Unique per process (random prefix) and across replicas; cheaper than urandom per request."""
    return f"req_{_ID_PREFIX}{next(_ID_COUNTER):012x}"


_LEDGER_UNAVAILABLE = ApiError(
    503,
    "The usage of this request could not be recorded, so its reply is withheld.",
    "server_error",
    "ledger_unavailable",
    "api_error",
    kind="ledger_unavailable",
)


async def until_durable(future: asyncio.Future[None] | None) -> None:
    """Wait for a record booked with ``durable=True``; 503 (``GatewayError``) if it cannot be written."""
    if future is None:
        return
    try:
        await future
    except OSError:
        raise GatewayError(_LEDGER_UNAVAILABLE) from None


class GatewayService:
    """Everything behind the HTTP layer. ``providers`` and ``tracker`` may be injected (tests, bench)."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        providers: Mapping[str, BaseLLMProvider] | None = None,
        tracker: CostTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.shared: SharedState | None = None
        """Budgets, key limits and breakers shared with other replicas through Redis (``redis_url``)."""
        if config.server.redis_url:
            from ..state.redis_shared import open_shared_state

            self.shared = open_shared_state(config.server.redis_url, prefix=config.server.redis_prefix)
        shared = self.shared
        self.keys = KeyStore(
            config.keys, config.admin_key_sha256, clock, buckets=shared.bucket if shared else None
        )
        self.metrics = Metrics()
        self.providers: dict[str, BaseLLMProvider] = dict(providers or {})
        for pcfg in config.providers:
            if pcfg.name not in self.providers:
                self.providers[pcfg.name] = build_provider(pcfg)
        self.targets: dict[str, Target] = build_targets(config, self.providers, shared)
        if tracker is None:
            from ..cost_tracker import CostTracker

            tracker = CostTracker(
                storage=config.server.database_url,
                state=shared.budget if shared else None,
                reservation_ttl_s=config.server.reservation_ttl_s,
            )
        self.tracker = tracker
        for budget in config.budgets:
            tracker.set_budget(
                budget.tenant,
                budget.monthly_limit_usd,
                list(budget.alert_thresholds),
                hard_limit=budget.hard_limit,
            )
        self.hard_limits = {
            t: float(b["monthly_limit_usd"]) for t, b in tracker.list_budgets().items() if b.get("hard_limit")
        }
        """Hard-limited tenants' monthly limits: a worst case above one can never be served."""
        self.ledger = LedgerWriter(tracker)
        self._alert_hooks: list[Callable[[str, float, float], None]] = []
        tracker.register_alert_callback(self._on_alert)
        self.closed = False
        """``close`` has run (or is running): health monitoring is not started any more."""
        self._monitor_start: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lookups

    def resolve(self, model: str, key: VirtualKey) -> Target:
        """The target a key may call under this name; unknown and forbidden look alike (404)."""
        target = self.targets.get(model)
        if target is None or not target.open_to(key):
            raise GatewayError(model_not_found(model))
        return target

    @staticmethod
    def deadline(target: Target, headers: Mapping[str, str]) -> float | None:
        """The request's deadline: the route's ``timeout``, or less if the client asks for less.

        A client asks with ``x-greenlang-timeout: <seconds>``; a bad value is a 400 naming the
        header. (The SDKs' ``x-stainless-timeout`` is not used: it is a read timeout, the gap
        between bytes, and a stream may rightly outlast it.)"""
        limit = target.timeout
        raw = headers.get("x-greenlang-timeout")
        if raw is not None:
            try:
                asked = float(raw)
            except ValueError:
                asked = float("nan")
            if not 0 < asked < float("inf"):
                raise GatewayError(
                    bad_request(f"x-greenlang-timeout must be a positive number of seconds, got {raw!r}.")
                )
            limit = asked if limit is None else min(limit, asked)
        return limit

    def visible_models(self, key: VirtualKey) -> list[str]:
        return [name for name, t in self.targets.items() if t.open_to(key)]

    def admit(self, key: VirtualKey) -> None:
        wait = key.admit()
        if wait is not None:
            raise GatewayError(rate_limited("Rate limit exceeded for this API key.", wait))

    # ------------------------------------------------------------------ budget

    def reserve(self, key: VirtualKey, target: Target, request: GenerationRequest) -> Reservation | None:
        """Hold the worst case over the target's members; 429 (budget) when a hard limit refuses.

        Two steps keep this cheap on the hot path and exact where it matters: first a bound
        that needs no tokenizer (a BPE token covers at least one byte, so the prompt's UTF-8
        size bounds its token count); only if the budget refuses that bound is the prompt
        counted exactly and the reservation retried, so a tenant near its limit is never
        refused for our shortcut.
        """
        limit = self.hard_limits.get(key.tenant)
        if limit is None:
            return None
        bound = prompt_byte_bound(request)
        quick = worst_case(target, request, bound) if bound is not None else None
        try:
            if quick is not None and quick <= limit:
                try:
                    return self.tracker.reserve(key.tenant, quick, agent_id=key.agent, route=target.name)
                except BudgetExceededError:
                    pass  # maybe only our bound is too loose: count exactly below
            exact = worst_case(target, request, None)
            if not exact <= limit:  # (NaN and inf included) never fits: say why, not the ledger's complaint
                raise GatewayError(budget_error(never_fits(key.tenant, request, exact, limit)))
            return self.tracker.reserve(key.tenant, exact, agent_id=key.agent, route=target.name)
        except BudgetExceededError as exc:
            raise GatewayError(budget_error(budget_exhausted_message(key.tenant, exc))) from None

    def continuation_budget(self, key: VirtualKey, target: Target) -> ContinuationBudget | None:
        """The stream's ``before_continuation`` hook: each continuation reserves its own worst case
        (continuation_budget.py), and the request's ``Settlement`` frees them after its last record.
        None for a tenant without a hard budget: nothing to hold."""
        limit = self.hard_limits.get(key.tenant)
        if limit is None:
            return None
        from .continuation_budget import ContinuationBudget

        return ContinuationBudget(self.tracker, key.tenant, key.agent, target.name, limit)

    # ------------------------------------------------------------------ calls

    async def generate(
        self, key: VirtualKey, target: Target, request: GenerationRequest, request_id: str
    ) -> GenerationResponse:
        """A plain request: reserve, call the route's router, book the reply's usage.

        Under ``durable_replies`` the reply is returned only once its record is durable (else
        503); a failed call releases the reservation and raises for the handler to render."""
        reservation = self.reserve(key, target, request)
        settlement = Settlement(self.ledger, self.metrics, key, request_id, reservation)
        try:
            if target.context_window_fallbacks:
                response = await self._beyond_context(
                    key, target, request, lambda t, r: t.router.generate(r))
            else:
                response = await target.router.generate(request)
        except BaseException:
            settlement.release()
            raise
        dropped = response.dropped_params
        if self.config.server.durable_replies:
            await until_durable(settlement.book(
                response.usage, response.provider, response.model_id, durable=True, dropped=dropped))
        else:
            settlement.book(response.usage, response.provider, response.model_id, dropped=dropped)
        return response

    async def open_stream(
        self, key: VirtualKey, target: Target, request: GenerationRequest, request_id: str
    ) -> OpenStream:
        """A streamed request, started: reserved, routed, and its first chunk already pulled.

        Every failure up to the first chunk (budget refusal, failover exhausted, an upstream
        stream that ends before any data) raises here, with the reservation released, so the
        handler still answers it as an HTTP error. After that the returned stream must be
        closed (``OpenStream.close``) whatever happens: that books the request."""
        budget = self.continuation_budget(key, target)
        settlement = Settlement(
            self.ledger,
            self.metrics,
            key,
            request_id,
            self.reserve(key, target, request),
            budget.reservations if budget is not None else None,
        )
        try:
            if target.context_window_fallbacks:
                upstream, first = await self._beyond_context(
                    key, target, request, lambda t, r: self._first_chunk(t, r, budget))
            else:
                upstream, first = await self._first_chunk(target, request, budget)
        except BaseException as exc:
            settlement.release()
            if isinstance(exc, StopAsyncIteration):
                raise ProviderError("upstream stream ended before any data", retryable=True) from None
            raise
        return OpenStream(self, settlement, target, request, upstream, first)

    @staticmethod
    async def _first_chunk(
        target: Target, request: GenerationRequest, budget: ContinuationBudget | None
    ) -> tuple[AsyncIterator[StreamChunk], StreamChunk]:
        """Start ``target``'s stream and pull its first chunk; closes the stream if that fails."""
        upstream = target.router.stream(request, before_continuation=budget).__aiter__()
        try:
            return upstream, await upstream.__anext__()
        except BaseException:
            with contextlib.suppress(BaseException):
                await _aclose(upstream)
            raise

    @staticmethod
    async def _beyond_context(
        key: VirtualKey,
        target: Target,
        request: GenerationRequest,
        call: Callable[[Target, GenerationRequest], Awaitable[T]],
    ) -> T:
        """``call(target, request)``; when every provider of the route refused the prompt as too
        long, the same on each of its ``context_window_fallbacks`` in turn.

        The request's deadline (``timeout``: the route's, or the client's
        ``x-greenlang-timeout``) covers the whole walk, fallbacks included: each fallback gets
        what is left of it, and none is tried once it has passed. A fallback the key may not
        call (a route outside its ``routes``, or a provider alone for a route-limited key) is
        passed over, as ``resolve`` would refuse it.

        One ``failover.ContextLimits`` is shared by every router call made here, so a model that
        refused is never sent the prompt again and a model known to be no larger is skipped,
        across routes. A fallback whose every provider was skipped changes nothing; a client
        error (other than context length) ends the walk at once, as within a route."""
        from ..failover import CONTEXT_LIMITS, ContextLimits

        deadline = None if request.timeout is None else time.monotonic() + request.timeout
        token = CONTEXT_LIMITS.set(ContextLimits())
        try:
            try:
                return await call(target, request)
            except ProviderError as exc:
                if not _too_long(exc):
                    raise
                error: ProviderError = exc
            for fallback in target.context_window_fallbacks:
                if not fallback.open_to(key):
                    continue
                attempt = request
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    attempt = dataclasses.replace(request, timeout=left)
                try:
                    return await call(fallback, attempt)
                except ProviderError as exc:
                    if isinstance(exc, AllProvidersFailedError) and not exc.errors:
                        continue  # nobody called: every provider there was ruled out already
                    refusal = isinstance(exc, InvalidRequestError | AuthenticationError | BudgetExceededError)
                    if refusal and not _too_long(exc):
                        raise
                    error = exc
            raise error
        finally:
            CONTEXT_LIMITS.reset(token)

    def estimate_usage(
        self,
        target: Target,
        provider_name: str | None,
        model: str | None,
        request: GenerationRequest,
        text: str,
    ) -> TokenUsage:
        """Usage for a stream that ended without the provider's own count: local tokens, marked estimated.

        Priced under the id the provider's own usage is billed under (``catalog_id``); the
        output is capped at ``max_tokens``, what the call could bill (and its reservation covers).
        """
        from ..pricing import price_usage
        from ..tokens import count_text_tokens

        provider = target.provider(provider_name)
        model_id = model or provider.model_id
        catalog_id = provider.catalog_id
        try:
            input_tokens = provider.count_tokens(request)
            output_tokens = min(count_text_tokens(text, model_id), request.max_tokens) if text else 0
            return price_usage(catalog_id, model_id, input_tokens, output_tokens, estimated=True)
        except Exception:
            logger.warning("could not estimate usage of an interrupted stream", exc_info=True)
            words = len(text.split())
            return TokenUsage(0, words, words, estimated=True)

    # ------------------------------------------------------------------ beside the requests
    # Nothing below runs per request: these are called at start, by the admin API and
    # metrics, from a budget alert, or at shutdown.

    @property
    def pending_writes(self) -> int:
        """Ledger records queued and not yet written (0 once ``drain`` returns)."""
        return self.ledger.pending

    async def drain(self) -> None:
        """Wait until every queued ledger write has landed."""
        await self.ledger.drain()

    # ------------------------------------------------------------------ start-up

    def warm(self, freeze_gc: bool = False) -> None:
        """Load what the first request would load (price catalog, tokenizers); optionally freeze the heap.

        Both matter for tail latency: the catalog takes ~0.2 s to load, and once loaded a full
        garbage collection walks its objects (~20 ms on a small machine). ``gc.freeze()`` moves
        everything alive after start-up out of the collector's sight, so those pauses never
        land on a request. Freezing is process-wide, so only the process owner (``serve``)
        asks for it; an app embedded in tests or another server does not.
        """
        import gc

        probe = GenerationRequest(prompt="warm up", max_tokens=1)
        for provider in self.providers.values():
            try:
                provider.estimate_cost(probe)
                provider.count_tokens(probe)
            except Exception:
                logger.debug("warm-up of a provider failed", exc_info=True)
        if freeze_gc:
            gc.collect()
            gc.freeze()

    # ------------------------------------------------------------------ alerts

    def add_alert_hook(self, hook: Callable[[str, float, float], None]) -> None:
        self._alert_hooks.append(hook)

    def _on_alert(self, tenant_id: str, threshold: float, current_cost: float) -> None:
        logger.warning(
            "budget alert: tenant %s reached %.0f%% (%.6f USD)", tenant_id, threshold * 100, current_cost
        )
        for hook in self._alert_hooks:
            try:
                hook(tenant_id, threshold, current_cost)
            except Exception:
                logger.exception("budget alert hook failed")

    # ------------------------------------------------------------------ views

    def breaker_states(self) -> list[tuple[str, str, str]]:
        rows = []
        for name, target in self.targets.items():
            providers = target.router.get_metrics().get("providers", {})
            for pname, data in providers.items():
                rows.append((name, pname, str(data.get("circuit_breaker_state", "closed"))))
        return rows

    def budget_rows(self) -> list[tuple[str, float, float]]:
        rows = []
        for budget in self.config.budgets:
            try:
                status = self.tracker.check_budget(budget.tenant)
            except KeyError:
                continue
            spent = getattr(status, "spent_usd", budget.monthly_limit_usd * status.percentage_used / 100.0)
            rows.append((budget.tenant, spent, budget.monthly_limit_usd))
        return rows

    # ------------------------------------------------------------------ lifecycle

    async def start_health_monitoring(self, delay: float | None = None) -> None:
        """After ``delay`` (default: one ``health_check_interval``), each router probes its providers
        every interval (0: never); ``close`` stops them.

        A failed probe makes a provider a last resort on that route until a probe succeeds; the
        breakers still judge real calls. The first round waits one interval: at start every
        provider is presumed healthy, and replicas restarting together do not probe at once."""
        interval = self.config.server.health_check_interval
        if interval <= 0 or self.closed or self._monitor_start is not None:
            return

        async def start() -> None:
            await asyncio.sleep(interval if delay is None else delay)
            for target in self.targets.values():
                await target.router.start_health_monitoring()

        self._monitor_start = asyncio.get_running_loop().create_task(start(), name="gateway-health-start")

    async def close(self, drain_timeout: float = 30.0) -> None:
        """Flush the ledger, close routers and providers; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        try:
            await asyncio.wait_for(self.drain(), drain_timeout)
        except TimeoutError:
            logger.error("shutdown: %d ledger writes still pending", self.ledger.pending)
        if self._monitor_start is not None:
            self._monitor_start.cancel()
        for target in self.targets.values():  # routers share providers: close each provider once, below
            try:
                await target.router.stop_health_monitoring()
            except Exception:
                logger.warning("stopping health monitoring failed", exc_info=True)
        for provider in self.providers.values():
            try:
                await provider.close()
            except Exception:
                logger.warning("provider close failed", exc_info=True)
        self.ledger.close()
        await asyncio.to_thread(self.tracker.close)
        if self.shared is not None:
            self.shared.close()


def _too_long(error: ProviderError) -> bool:
    """The prompt did not fit: a context-length error, or a walk that met one."""
    if isinstance(error, ContextWindowExceededError):
        return True
    return isinstance(error, AllProvidersFailedError) and any(
        isinstance(e, ContextWindowExceededError) for _, e in error.errors)


async def _aclose(upstream: AsyncIterator[StreamChunk]) -> None:
    """Close the router's stream (an async generator: cancels the upstream call and frees it)."""
    aclose = getattr(upstream, "aclose", None)
    if aclose is not None:
        await aclose()


class OpenStream:
    """One streamed request after its first chunk: pull its chunks, then ``finish``; ``close`` always.

    An async iterator over the chunks after ``first`` (``__anext__`` is a plain coroutine over
    the router's stream: no generator layer per chunk). It keeps what the request's booking
    needs: the text delivered (for an estimate when the provider reports no usage), the
    usage, the finish reason. Iteration raises the upstream's error, and
    ``StreamInterruptedError`` for an end without a finish reason (that is not an answer); a
    cut stream that could not be continued still books each upstream call it made.

    ``finish()`` is for a stream that ended with a finish reason: its usage (estimated if the
    provider reported none), booked durably first under ``durable_replies`` so the final event
    is only sent for a durable record. ``close()`` closes the upstream call (a client that
    went away cancels it) and books what happened unless ``finish`` already did: the usage,
    or an estimate of the text delivered, or a release when nothing was produced.

    Whoever opens one must close it: the handler's ``StreamRelay`` does in its ``finally``, and
    Starlette always calls the response an endpoint returns. Code that embeds
    ``handle_completion`` and drops the response uncalled leaves the request's money held until
    the reservation's TTL and its upstream open until garbage collection.
    """

    __slots__ = (
        "_pieces",
        "_pull",
        "_request",
        "_service",
        "_settlement",
        "_target",
        "_texts",
        "_upstream",
        "dropped_params",
        "finish_reason",
        "first",
        "model",
        "provider",
        "provider_name",
        "stop_sequence",
        "usage",
    )

    def __init__(
        self,
        service: GatewayService,
        settlement: Settlement,
        target: Target,
        request: GenerationRequest,
        upstream: AsyncIterator[StreamChunk],
        first: StreamChunk,
    ) -> None:
        self._service = service
        self._settlement = settlement
        self._target = target
        self._request = request
        self._upstream = upstream
        self._pull = upstream.__anext__
        self.first = first
        """The first chunk, pulled by ``open_stream``; iteration yields the ones after it."""
        name = first.provider or (target.members[0][0] if len(target.members) == 1 else "unknown")
        self.provider_name = name
        """The ``[[providers]]`` name that answers (the one that sent the first chunk)."""
        self.provider: BaseLLMProvider = target.provider(name)
        self.model = first.model_id or self.provider.model_id
        self._texts: list[str] = [first.text] if first.text else []
        self._pieces: list[str] = []
        """What the caller got beyond text (tool names and arguments, thinking): output tokens an
        interrupted stream still used, counted in its estimate (never a prefill: ``_texts`` is)."""
        if first.deltas:
            self._keep(first)
        self.usage: TokenUsage | None = first.usage
        self.finish_reason: str | None = first.finish_reason
        self.stop_sequence: str | None = first.stop_sequence
        self.dropped_params: tuple[str, ...] = self.provider.fit(request).dropped if request.rich else ()
        """The request's hints the answering provider left out (its header and its ledger record)."""

    @property
    def request_id(self) -> str:
        return self._settlement.request_id

    @property
    def route(self) -> str:
        """The target's name (a route, or a provider's ``model_id``) the request called."""
        return self._target.name

    def __aiter__(self) -> OpenStream:
        return self

    async def __anext__(self) -> StreamChunk:
        try:
            chunk = await self._pull()
        except StopAsyncIteration:
            if self.finish_reason is None:  # an end without a finish reason is not an answer
                name = self.provider_name
                raise StreamInterruptedError(
                    f"{name}: stream ended without a finish reason",
                    provider=name,
                    partial_text="".join(self._texts),
                ) from None
            raise
        except StreamInterruptedError as exc:
            if exc.usage_parts:  # a continued stream that could not be finished: book each call
                self.usage = combine(exc.usage_parts)
            raise
        if chunk.text:
            self._texts.append(chunk.text)
        if chunk.deltas:
            self._keep(chunk)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
            self.stop_sequence = chunk.stop_sequence
        return chunk

    async def finish(self) -> TokenUsage:
        """The usage of a stream that ended with a finish reason (estimated if none was reported).

        Under ``durable_replies`` it is booked here and returned only once durable (503
        ``GatewayError`` if it cannot be written); otherwise ``close`` books it."""
        usage = self.usage
        if usage is None:  # the provider never reported usage: count it ourselves, marked estimated
            usage = self.usage = self._estimate()
        if self._service.config.server.durable_replies:
            await until_durable(self._settlement.book(
                usage, self.provider_name, self.model, durable=True, dropped=self.dropped_params))
        return usage

    async def close(self) -> None:
        """Close the upstream call, then book the request unless that is done: exactly once."""
        with contextlib.suppress(BaseException):
            await _aclose(self._upstream)
        settlement = self._settlement
        if settlement.done:
            return
        usage = self.usage
        if usage is None and (self._texts or self._pieces):
            usage = self.usage = self._estimate()
        if usage is None:
            settlement.release()
        else:
            settlement.book(usage, self.provider_name, self.model, dropped=self.dropped_params)

    def _keep(self, chunk: StreamChunk) -> None:
        self._pieces.extend(output_pieces(chunk.deltas))

    def _estimate(self) -> TokenUsage:
        return self._service.estimate_usage(
            self._target, self.provider_name, self.model, self._request, "".join(self._texts + self._pieces)
        )
