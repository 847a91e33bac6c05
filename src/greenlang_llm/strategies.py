"""The five routing strategies: each one only *orders* candidates.

The router decides which providers may be called now (breaker admits, health)
and hands them over in *tiers* — healthy first, then providers the health
monitor marked unhealthy but whose breaker is closed, as a last resort. A
strategy orders each tier on its own and concatenates them; failover then walks
that order. Keeping strategies pure orderings means a new policy (or a
per-route one in the gateway) never touches failover, breakers or metrics.

- PRIORITY: ``priority`` ascending (1 first), ties by registration order.
- LEAST_COST: cheapest *for this request*: ``provider.estimate_cost(request)``
  (prompt tokens at the input price plus ``max_tokens`` at the output price),
  so the winner flips when the request's shape changes which is cheaper.
- LEAST_LATENCY: exponentially weighted moving average of observed latency;
  unmeasured providers come first, so each gets measured.
- ROUND_ROBIN: one counter per router, advanced synchronously per call, so the
  spread is exact under any concurrency (1,000 calls over 3 → 334/333/333).
- RANDOM: a shuffle with the injected ``random.Random``.

A strategy of your own is a :class:`Strategy` (implement ``order``) or a
:class:`PerTierStrategy` (implement ``order_tier``), given to
``LLMRouter(strategy=...)`` as an object.
"""

from __future__ import annotations

import abc
import itertools
import logging
import math
import operator
import random
from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol, TypeVar

from ._types import GenerationRequest
from .providers.base_provider import BaseLLMProvider

__all__ = [
    "Candidate",
    "LeastCost",
    "LeastLatency",
    "PerTierStrategy",
    "Priority",
    "Random",
    "RoundRobin",
    "RoutingStrategy",
    "Strategy",
    "make_strategy",
    "parse_strategy",
]

logger = logging.getLogger(__name__)


class RoutingStrategy(StrEnum):
    """How the router orders the providers it may call now; failover walks that order.

    The values are the names the gateway config accepts (``strategy = "least_cost"``).
    """

    PRIORITY = "priority"
    LEAST_COST = "least_cost"
    LEAST_LATENCY = "least_latency"
    ROUND_ROBIN = "round_robin"
    RANDOM = "random"


def parse_strategy(value: str | RoutingStrategy) -> RoutingStrategy:
    """``RoutingStrategy.X``, ``"least_cost"``, ``"LEAST_COST"`` or ``"least-cost"``."""
    if isinstance(value, RoutingStrategy):
        return value
    if isinstance(value, str):
        key = value.strip().lower().replace("-", "_")
        try:
            return RoutingStrategy(key)
        except ValueError:
            pass
    names = ", ".join(s.value for s in RoutingStrategy)
    raise ValueError(f"unknown routing strategy {value!r}; expected one of: {names}")


class Candidate(Protocol):
    """What a strategy may look at: the router's view of one registered provider."""

    @property
    def name(self) -> str: ...

    @property
    def priority(self) -> int: ...

    @property
    def order(self) -> int:
        """Registration order, 0-based: the tie-breaker everywhere."""

    @property
    def provider(self) -> BaseLLMProvider: ...

    @property
    def latency_ewma_ms(self) -> float | None: ...


C = TypeVar("C", bound=Candidate)


class Strategy(abc.ABC):
    """Orders the candidates of one call; the router walks that order on failover."""

    kind: RoutingStrategy | None = None
    """The built-in strategy this is, or None for one of your own."""

    @property
    def name(self) -> str:
        """What metrics report as the router's strategy: the built-in's value, else the class name."""
        return self.kind.value if self.kind is not None else type(self).__name__

    @abc.abstractmethod
    def order(self, tiers: Sequence[Sequence[C]], request: GenerationRequest) -> list[C]:
        """All candidates, tier by tier (healthy first, then last resorts), in this strategy's order.

        Return a new list; never drop a candidate the router handed over."""


class PerTierStrategy(Strategy):
    """A strategy that orders each tier on its own (every built-in but ROUND_ROBIN)."""

    def order(self, tiers: Sequence[Sequence[C]], request: GenerationRequest) -> list[C]:
        out: list[C] | None = None
        for tier in tiers:
            if tier:
                ordered = self.order_tier(tier, request)
                if out is None:
                    out = ordered  # the usual call has one tier: its ordered list is the answer
                else:
                    out.extend(ordered)
        return [] if out is None else out

    @abc.abstractmethod
    def order_tier(self, tier: Sequence[C], request: GenerationRequest) -> list[C]:
        """One tier's candidates in this strategy's order (a new list)."""


_BY_PRIORITY = operator.attrgetter("priority", "order")
"""(priority, registration order): one C call per candidate, no lambda made per call."""


class Priority(PerTierStrategy):
    kind = RoutingStrategy.PRIORITY

    def order_tier(self, tier: Sequence[C], request: GenerationRequest) -> list[C]:
        return sorted(tier, key=_BY_PRIORITY)


class LeastCost(PerTierStrategy):
    kind = RoutingStrategy.LEAST_COST

    def _cost(self, candidate: Candidate, request: GenerationRequest) -> float:
        try:
            cost = float(candidate.provider.estimate_cost(request))
        except Exception as error:  # a pricing gap must not take routing down
            logger.warning("cannot estimate cost for %s (%s); routing it last", candidate.name, error)
            return math.inf
        return cost if math.isfinite(cost) else math.inf

    def order_tier(self, tier: Sequence[C], request: GenerationRequest) -> list[C]:
        return sorted(tier, key=lambda c: (self._cost(c, request), c.priority, c.order))


class LeastLatency(PerTierStrategy):
    kind = RoutingStrategy.LEAST_LATENCY

    def order_tier(self, tier: Sequence[C], request: GenerationRequest) -> list[C]:
        def key(c: C) -> tuple[bool, float, int, int]:
            ewma = c.latency_ewma_ms
            return (ewma is not None, ewma or 0.0, c.priority, c.order)

        return sorted(tier, key=key)


class RoundRobin(Strategy):
    """One turn per call, shared by the tiers (so it is not a per-tier strategy)."""

    kind = RoutingStrategy.ROUND_ROBIN

    def __init__(self) -> None:
        self._counter = itertools.count()

    def order(self, tiers: Sequence[Sequence[C]], request: GenerationRequest) -> list[C]:
        turn = next(self._counter)
        out: list[C] = []
        for tier in tiers:
            ring = sorted(tier, key=lambda c: c.order)
            if ring:
                start = turn % len(ring)
                out.extend(ring[start:] + ring[:start])
        return out


class Random(PerTierStrategy):
    kind = RoutingStrategy.RANDOM

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def order_tier(self, tier: Sequence[C], request: GenerationRequest) -> list[C]:
        shuffled = list(tier)
        self.rng.shuffle(shuffled)
        return shuffled


def make_strategy(kind: str | RoutingStrategy, rng: random.Random | None = None) -> Strategy:
    """The strategy object for ``kind`` (enum or config name)."""
    kind = parse_strategy(kind)
    if kind is RoutingStrategy.PRIORITY:
        return Priority()
    if kind is RoutingStrategy.LEAST_COST:
        return LeastCost()
    if kind is RoutingStrategy.LEAST_LATENCY:
        return LeastLatency()
    if kind is RoutingStrategy.ROUND_ROBIN:
        return RoundRobin()
    return Random(rng)
