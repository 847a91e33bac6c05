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

Beside this module: ``_service_setup.py`` builds the providers and one ``Target``
(router) per route and model id, ``_worst_case.py`` prices a request's worst case and
words a budget's refusal, ``_service_ops.py`` holds what runs beside the requests
(warm-up, alerts, admin views, health probes, shutdown). Names are re-exported here.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._errors import BudgetExceededError
from .._types import GenerationRequest, GenerationResponse, TokenUsage
from ..providers.base_provider import billed_as
from ._service_ops import ServiceOps
from ._service_setup import Target, build_targets
from ._service_setup import build_provider as build_provider
from ._worst_case import budget_error, never_fits, worst_case
from ._worst_case import budget_exhausted_message as budget_exhausted_message
from ._worst_case import prompt_byte_bound as _prompt_byte_bound
from .config import GatewayConfig
from .errors import ApiError, bad_request, model_not_found, rate_limited
from .keys import KeyStore, VirtualKey
from .ledger_writer import LedgerWriter
from .metrics import Metrics

if TYPE_CHECKING:
    from ..cost_tracker import CostTracker, Reservation
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


class GatewayService(ServiceOps):
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
        (continuation_budget.py). None for a tenant without a hard budget: nothing to hold."""
        limit = self.hard_limits.get(key.tenant)
        if limit is None:
            return None
        from .continuation_budget import ContinuationBudget

        return ContinuationBudget(self.tracker, key.tenant, key.agent, target.name, limit)

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
            self.metrics.record_usage(
                key.tenant,
                provider or "unknown",
                usage.input_tokens,
                usage.output_tokens,
                usage.total_cost_usd,
            )
            record = {
                "provider": provider or "unknown",
                "tenant_id": key.tenant,
                "agent_id": key.agent,
                "model_id": model or "",
                "usage": usage,
                "request_id": request_id,
            }
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
            raise GatewayError(
                ApiError(
                    503,
                    "The usage of this request could not be recorded, so its reply is withheld.",
                    "server_error",
                    "ledger_unavailable",
                    "api_error",
                    kind="ledger_unavailable",
                )
            ) from None

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
            await self.settle_durably(
                reservation, key, response.usage, response.provider, response.model_id, request_id
            )
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
        catalog_id = billed_as(provider)
        try:
            input_tokens = provider.count_tokens(request)
            # capped at max_tokens: what the call could bill (and its reservation covers)
            output_tokens = min(count_text_tokens(text, model_id), request.max_tokens) if text else 0
            return price_usage(catalog_id, model_id, input_tokens, output_tokens, estimated=True)
        except Exception:
            logger.warning("could not estimate usage of an interrupted stream", exc_info=True)
            words = len(text.split())
            return TokenUsage(0, words, words, estimated=True)
