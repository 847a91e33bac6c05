"""What a request's ``model`` may name: the targets, each with its router, built once at start.

Every name a request's ``model`` may use becomes a ``Target`` — each route (model group)
with its own ``LLMRouter`` (strategy, retries, breaker settings, stream guards), and each
provider's ``model_id`` reaching that provider alone. The providers behind them are built
from the config here too (``build_provider``), so that the service only looks targets up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import GatewayConfig, ProviderConfig, RouteConfig

if TYPE_CHECKING:
    from ..llm_router import LLMRouter
    from ..providers.base_provider import BaseLLMProvider
    from ..state.redis_shared import SharedState
    from .keys import VirtualKey

__all__ = ["Target", "build_provider", "build_targets"]


@dataclass(slots=True)
class Target:
    """What a request's ``model`` names: a route (model group) or one provider's ``model_id``."""

    name: str
    router: LLMRouter
    members: tuple[tuple[str, BaseLLMProvider], ...]
    is_route: bool
    timeout: float | None = None
    """The route's deadline for a request's whole chain (``[[routes]] timeout``)."""
    context_window_fallbacks: tuple[Target, ...] = ()
    """Tried in order when every provider of this route refused the prompt as too long
    (``[[routes]] context_window_fallbacks``: another route, or one provider alone)."""
    drop_params: bool = True
    """``[[routes]] drop_params``: False refuses a request whose hints a provider would drop."""

    def open_to(self, key: VirtualKey) -> bool:
        """Whether ``key`` may call this target: a route its ``routes`` allow, or a model id
        alone only for a key not limited to routes (it could bypass them otherwise)."""
        return key.allows(self.name) if self.is_route else key.routes is None

    def reachable(self) -> tuple[tuple[str, BaseLLMProvider], ...]:
        """Every provider that may answer a request on this target: its members, then the members
        of its context-window fallbacks (what a hard budget's worst case must cover)."""
        if not self.context_window_fallbacks:
            return self.members
        return (*self.members, *(m for fallback in self.context_window_fallbacks for m in fallback.members))

    def provider(self, name: str | None) -> BaseLLMProvider:
        """The provider called ``name`` (a member, or a context-window fallback's member), else the
        first member (a stream or reply that named none)."""
        for member, provider in self.reachable():
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
        "supports_prefill": cfg.supports_prefill,
    }
    if cfg.type == "anthropic":
        from ..providers.anthropic_provider import AnthropicProvider

        return AnthropicProvider(cfg.model_id, **kwargs)
    from ..providers.openai_provider import OpenAIProvider

    return OpenAIProvider(cfg.model_id, **kwargs)


def build_targets(
    config: GatewayConfig, providers: Mapping[str, BaseLLMProvider], shared: SharedState | None
) -> dict[str, Target]:
    """Every route, then every provider's ``model_id`` not already a name (the first one wins).

    Routers share the providers (one connection pool each); a route with its own stream
    limits sees its members through a ``StreamGuard``. ``shared`` (Redis) holds the
    breakers when several replicas serve together.
    """
    from ..llm_router import LLMRouter, RoutingStrategy

    priority = {p.name: p.priority for p in config.providers}

    def router(
        strategy: str, names: tuple[str, ...], max_retries: int | None, route: RouteConfig | None = None
    ) -> LLMRouter:
        server = config.server
        threshold = route.circuit_breaker_threshold if route is not None else None
        recovery = route.circuit_breaker_timeout if route is not None else None
        base = route.circuit_breaker_base_timeout if route is not None else None
        r = LLMRouter(
            strategy=RoutingStrategy(strategy),
            max_failovers=max(0, len(names) - 1) if max_retries is None else max_retries,
            breaker_store=shared.breakers if shared else None,
            circuit_breaker_threshold=threshold or server.circuit_breaker_threshold,
            circuit_breaker_timeout=recovery or server.circuit_breaker_timeout,
            circuit_breaker_base_timeout=base or server.circuit_breaker_base_timeout,
            health_check_interval=server.health_check_interval or 30.0,  # 0: never started
            continue_on_failure=route.continue_on_failure if route is not None else True,
        )
        for name in names:
            provider = providers[name]
            if route is not None and route.guards_streams:  # the route's own stream limits
                from ..providers.stream_guard import StreamGuard

                provider = StreamGuard(
                    provider,
                    first_token_timeout=route.first_token_timeout,
                    idle_timeout=route.idle_timeout,
                    buffer_first_tokens=route.buffer_first_tokens,
                )
            r.register_provider(name, provider, priority=priority[name])
        return r

    targets: dict[str, Target] = {}
    for route in config.routes:
        targets[route.name] = Target(
            route.name,
            router(route.strategy, route.providers, route.max_retries, route),
            tuple((n, providers[n]) for n in route.providers),
            True,
            route.timeout,
            drop_params=route.drop_params,
        )
    for pcfg in config.providers:  # a model_id reaches its provider alone (first one wins)
        if pcfg.model_id not in targets:
            targets[pcfg.model_id] = Target(
                pcfg.model_id,
                router("priority", (pcfg.name,), 0),
                ((pcfg.name, providers[pcfg.name]),),
                False,
            )
    alone: dict[str, Target] = {}
    for route in config.routes:  # after every route exists: a fallback may name a later one
        fallbacks = []
        for name in route.context_window_fallbacks:
            if name in targets and targets[name].is_route:
                fallbacks.append(targets[name])
            else:  # a provider, by its name: a router over it alone
                if name not in alone:
                    members = ((name, providers[name]),)
                    alone[name] = Target(name, router("priority", (name,), 0), members, False)
                fallbacks.append(alone[name])
        targets[route.name].context_window_fallbacks = tuple(fallbacks)
    return targets
