"""The request path, straight down: key → route → budget reservation → router → ledger.

``GatewayService`` owns everything a request touches (providers, one
``LLMRouter`` per route, the key store, the ``CostTracker``, metrics) and
knows nothing about HTTP or either API's JSON: the route modules translate,
this module decides. Three choices matter for correctness and speed:

- **Reserve the worst case before calling.** The reservation is the most
  expensive member of the route with the request's ``max_tokens`` (failover may
  land on any member), so concurrent requests can never push a hard budget past
  its limit; the actual usage replaces it at commit. A stream continued on
  another provider pays its prompt again: each continuation reserves its own
  worst case first (``continuation_budget.py``) or is refused. A tenant without a hard
  budget (known at start: config or ledger) would get a reservation that holds
  nothing, so the estimate (a token count per member) and the call are skipped.
- **Write the ledger off the event loop, in batches** (``ledger_writer.py``):
  one transaction per flush on a writer thread; each reservation is released
  only after its record is durable, so budgets err on the safe side, never over.
- **Exactly one ledger entry per request.** Whoever finishes a request (plain
  reply, completed stream, failed or abandoned stream) calls ``settle`` once:
  commit with actual usage, commit an estimate for tokens delivered without a
  final usage, or release when nothing was produced.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import BudgetExceededError, InvalidRequestError
from .._types import GenerationRequest, GenerationResponse, TokenUsage
from .config import GatewayConfig, ProviderConfig, RouteConfig
from .errors import ApiError, bad_request, model_not_found, rate_limited
from .keys import KeyStore, VirtualKey
from .ledger_writer import LedgerWriter
from .metrics import Metrics

if TYPE_CHECKING:
    from ..cost_tracker import CostTracker, Reservation
    from ..llm_router import LLMRouter
    from ..providers.base_provider import BaseLLMProvider
    from ..state.redis_shared import SharedState
    from .continuation_budget import ContinuationBudget

__all__ = ["GatewayError", "GatewayService", "Target", "new_request_id"]

logger = logging.getLogger(__name__)


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


@dataclass(slots=True)
class Target:
    """What a request's ``model`` names: a route (model group) or one provider's ``model_id``."""

    name: str
    router: LLMRouter
    members: tuple[tuple[str, BaseLLMProvider], ...]
    is_route: bool
    timeout: float | None = None
    """The route's deadline for a request's whole chain (``[[routes]] timeout``)."""

    def provider(self, name: str | None) -> BaseLLMProvider:
        """The member called ``name``, else the first member (a stream or reply that named none)."""
        for member, provider in self.members:
            if member == name:
                return provider
        return self.members[0][1]


def build_provider(cfg: ProviderConfig) -> BaseLLMProvider:
    """A real provider from its config entry; the key comes from the environment, never the file."""
    kwargs: dict[str, Any] = {
        "api_key": cfg.api_key,
        "max_retries": cfg.max_retries,
        "timeout": cfg.timeout,
        "base_url": cfg.base_url,
        "first_token_timeout": cfg.first_token_timeout,
        "idle_timeout": cfg.idle_timeout,
        "base_delay": cfg.base_delay,
        "max_delay": cfg.max_delay,
        "max_retry_after": cfg.max_retry_after,
    }
    if cfg.type == "anthropic":
        from ..providers.anthropic_provider import AnthropicProvider

        return AnthropicProvider(cfg.model_id, **kwargs)
    from ..providers.openai_provider import OpenAIProvider

    return OpenAIProvider(cfg.model_id, **kwargs)


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
        from ..llm_router import LLMRouter, RoutingStrategy

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
        priority = {p.name: p.priority for p in config.providers}

        def router(
            strategy: str, names: tuple[str, ...], max_retries: int | None, route: RouteConfig | None = None
        ) -> LLMRouter:
            server = config.server
            threshold = route.circuit_breaker_threshold if route is not None else None
            recovery = route.circuit_breaker_timeout if route is not None else None
            r = LLMRouter(
                strategy=RoutingStrategy(strategy),
                max_retries=max(0, len(names) - 1) if max_retries is None else max_retries,
                breaker_store=shared.breakers if shared else None,
                circuit_breaker_threshold=threshold or server.circuit_breaker_threshold,
                circuit_breaker_timeout=recovery or server.circuit_breaker_timeout,
                health_check_interval=server.health_check_interval or 30.0,  # 0: never started
                continue_on_failure=route.continue_on_failure if route is not None else True,
            )
            for name in names:
                provider = self.providers[name]
                if route is not None and route.guards_streams:  # the route's own stream limits
                    from ..providers.stream_guard import StreamGuard

                    provider = StreamGuard(
                        provider, first_token_timeout=route.first_token_timeout,
                        idle_timeout=route.idle_timeout, buffer_first_tokens=route.buffer_first_tokens,
                    )
                r.register_provider(name, provider, priority=priority[name])
            return r

        self.targets: dict[str, Target] = {}
        for route in config.routes:
            self.targets[route.name] = Target(
                route.name,
                router(route.strategy, route.providers, route.max_retries, route),
                tuple((n, self.providers[n]) for n in route.providers),
                True,
                route.timeout,
            )
        for pcfg in config.providers:  # a model_id reaches its provider alone (first one wins)
            if pcfg.model_id not in self.targets:
                self.targets[pcfg.model_id] = Target(
                    pcfg.model_id,
                    router("priority", (pcfg.name,), 0),
                    ((pcfg.name, self.providers[pcfg.name]),),
                    False,
                )
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
        self._monitor_start: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lookups

    def resolve(self, model: str, key: VirtualKey) -> Target:
        """The target a key may call under this name; unknown and forbidden look alike (404)."""
        target = self.targets.get(model)
        if target is None or (target.is_route and not key.allows(model)):
            raise GatewayError(model_not_found(model))
        if not target.is_route and key.routes is not None:
            raise GatewayError(model_not_found(model))  # a route-limited key cannot bypass its routes
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
        return [
            name
            for name, t in self.targets.items()
            if (t.is_route and key.allows(name)) or (not t.is_route and key.routes is None)
        ]

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
        bound = _prompt_byte_bound(request)
        quick = self._worst_case(target, request, bound) if bound is not None else None
        try:
            if quick is not None and quick <= limit:
                try:
                    return self.tracker.reserve(key.tenant, quick, agent_id=key.agent, route=target.name)
                except BudgetExceededError:
                    pass  # maybe only our bound is too loose: count exactly below
            exact = self._worst_case(target, request, None)
            if not exact <= limit:  # (NaN and inf included) never fits: say why, not the ledger's complaint
                raise GatewayError(_budget_error(_never_fits(key.tenant, request, exact, limit)))
            return self.tracker.reserve(key.tenant, exact, agent_id=key.agent, route=target.name)
        except BudgetExceededError as exc:
            raise GatewayError(_budget_error(budget_exhausted_message(key.tenant, exc))) from None

    def continuation_budget(self, key: VirtualKey, target: Target) -> ContinuationBudget | None:
        """The stream's ``before_continuation`` hook: each continuation reserves its own worst case
        (continuation_budget.py). None for a tenant without a hard budget: nothing to hold."""
        limit = self.hard_limits.get(key.tenant)
        if limit is None:
            return None
        from .continuation_budget import ContinuationBudget

        return ContinuationBudget(self.tracker, key.tenant, key.agent, target.name, limit)

    @staticmethod
    def _worst_case(target: Target, request: GenerationRequest, input_bound: int | None) -> float:
        """Max over members of prompt + ``max_tokens`` cost; ``input_bound`` replaces the token count.

        The bound is priced under the id the member's usage is billed under (``display_name``,
        an OpenAI-compatible server's ``provider_name``), as ``estimate_cost`` prices it.
        """
        from ..pricing import estimate_cost_usd
        from ..providers.base_provider import BaseLLMProvider as _Base

        worst = 0.0
        for _, provider in target.members:
            try:
                if input_bound is not None and type(provider).estimate_cost is _Base.estimate_cost:
                    catalog_id: str = getattr(provider, "display_name", provider.name)
                    cost = estimate_cost_usd(catalog_id, provider.model_id, input_bound, request.max_tokens)
                else:
                    cost = provider.estimate_cost(request)
            except InvalidRequestError:
                raise
            except Exception:  # pricing must never take the gateway down
                logger.warning("cost estimate failed for %s", target.name, exc_info=True)
                continue
            worst = max(worst, cost)
        return worst

    def settle(
        self,
        reservation: Reservation | None,
        key: VirtualKey,
        usage: TokenUsage | None,
        provider: str | None,
        model: str | None,
        request_id: str,
        wait: bool = False,
    ) -> asyncio.Future[None] | None:
        """Finish the request's ledger entry exactly once: queue its record (or just the release).

        ``wait``: return a future that completes when the record is durable (``durable_replies``).
        """
        record: dict[str, Any] | None = None
        if usage is not None:
            key.charge_tokens(usage.total_tokens)
            self.metrics.record_usage(key.tenant, provider or "unknown", usage.input_tokens,
                                      usage.output_tokens, usage.total_cost_usd)
            record = {"provider": provider or "unknown", "tenant_id": key.tenant, "agent_id": key.agent,
                      "model_id": model or "", "usage": usage, "request_id": request_id}
        return self.ledger.submit(reservation, record, wait)

    async def settle_durably(
        self,
        reservation: Reservation | None,
        key: VirtualKey,
        usage: TokenUsage | None,
        provider: str | None,
        model: str | None,
        request_id: str,
    ) -> None:
        """``settle``, then wait until the record is durable; 503 if it cannot be written."""
        future = self.settle(reservation, key, usage, provider, model, request_id, wait=True)
        if future is None:
            return
        try:
            await future
        except OSError:
            raise GatewayError(ApiError(
                503, "The usage of this request could not be recorded, so its reply is withheld.",
                "server_error", "ledger_unavailable", "api_error", kind="ledger_unavailable",
            )) from None

    @property
    def pending_writes(self) -> int:
        return self.ledger.pending

    async def drain(self) -> None:
        """Wait until every queued ledger write has landed."""
        await self.ledger.drain()

    # ------------------------------------------------------------------ calls

    async def generate(
        self, key: VirtualKey, target: Target, request: GenerationRequest, request_id: str
    ) -> GenerationResponse:
        reservation = self.reserve(key, target, request)
        try:
            response = await target.router.generate(request)
        except BaseException:
            self.settle(reservation, key, None, None, None, request_id)
            raise
        if self.config.server.durable_replies:
            await self.settle_durably(reservation, key, response.usage, response.provider,
                                      response.model_id, request_id)
        else:
            self.settle(reservation, key, response.usage, response.provider, response.model_id, request_id)
        return response

    def estimate_usage(
        self,
        target: Target,
        provider_name: str | None,
        model: str | None,
        request: GenerationRequest,
        text: str,
    ) -> TokenUsage:
        """Usage for a stream that ended without the provider's own count: local tokens, marked estimated.

        Priced under the id the provider's own usage is billed under (``display_name``).
        """
        from ..pricing import price_usage
        from ..tokens import count_text_tokens

        provider = target.provider(provider_name)
        model_id = model or provider.model_id
        catalog_id: str = getattr(provider, "display_name", provider.name)
        try:
            input_tokens = provider.count_tokens(request)
            # capped at max_tokens: what the call could bill (and its reservation covers)
            output_tokens = min(count_text_tokens(text, model_id), request.max_tokens) if text else 0
            return price_usage(catalog_id, model_id, input_tokens, output_tokens, estimated=True)
        except Exception:
            logger.warning("could not estimate usage of an interrupted stream", exc_info=True)
            words = len(text.split())
            return TokenUsage(0, words, words, estimated=True)

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


def _prompt_byte_bound(request: GenerationRequest) -> int | None:
    """An upper bound on prompt tokens from UTF-8 sizes, or None if a block is not plain text."""
    total = 16 + (len(request.system.encode()) if request.system else 0)
    for message in request.to_messages():
        content = message.get("content")
        total += 8
        if isinstance(content, str):
            total += len(content.encode())
            continue
        for block in content or ():
            if not isinstance(block, dict) or block.get("type") != "text":
                return None
            total += len(str(block.get("text", "")).encode()) + 4
    return total


def _budget_error(message: str) -> ApiError:
    return ApiError(429, message, "insufficient_quota", "budget_exceeded", "rate_limit_error",
                    kind="budget_exceeded")


def _never_fits(tenant: str, request: GenerationRequest, worst: float, limit: float) -> str:
    cost = f"{worst:.2f} USD" if worst < 1e12 else "beyond any budget"
    return (
        f"max_tokens={request.max_tokens} is too large for tenant '{tenant}': this request's worst-case "
        f"cost (its prompt plus max_tokens output tokens: {cost}) exceeds the whole monthly budget of "
        f"{limit:.2f} USD, so it can never be served. Lower max_tokens (or raise the budget)."
    )


def budget_exhausted_message(
    tenant: str | None,
    exc: BudgetExceededError,
    why: str = "this request's worst-case cost does not fit the remaining budget.",
) -> str:
    """The 429 text when a hard budget refuses a reservation (a request's, or a continuation's)."""
    limit = f" of {exc.limit_usd:.2f} USD" if exc.limit_usd is not None else ""
    return f"Monthly budget{limit} for tenant '{tenant}' is exhausted: {why}"
