"""Hard budgets across a continued stream: reserve each continuation's extra worst case first.

The request's reservation (``GatewayService.reserve``) covers one upstream call. A
continuation (stream_call.py) is a second call that pays the prompt again plus the
delivered text as a prefill, so without a reservation of its own a hard budget could
be passed by up to one prompt + ``max_tokens`` of input per continuation. The router
consults a :class:`ContinuationBudget` before each continuation attempt: it reserves
that provider's worst case for the exact continuation request (prompt incl. the
prefill at its input price, the remaining ``max_tokens`` at its output price) as an
additional reservation, or raises ``BudgetExceededError`` and the router ends the
stream interrupted instead of calling. The request's ``Settlement`` (settlement.py) frees
every reservation of the request exactly once: the request's own with its last ledger record
(``<id>.2``, ``.3``, ...), these queued right behind it, so until the records are durable
the budget counts the cost twice: safe, never over.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from .._errors import BudgetExceededError

if TYPE_CHECKING:
    from .._types import GenerationRequest
    from ..cost_tracker import CostTracker, Reservation
    from ..providers.base_provider import BaseLLMProvider

__all__ = ["ContinuationBudget"]

logger = logging.getLogger(__name__)


class ContinuationBudget:
    """One streamed request's ``before_continuation`` hook; ``reservations`` are the extra holds."""

    __slots__ = ("agent", "limit_usd", "reservations", "route", "tenant", "tracker")

    def __init__(self, tracker: CostTracker, tenant: str, agent: str, route: str, limit_usd: float) -> None:
        self.tracker = tracker
        self.tenant = tenant
        self.agent = agent
        self.route = route
        self.limit_usd = limit_usd
        self.reservations: list[Reservation] = []
        """Held until the request's last ledger record is durable (its ``Settlement`` frees them)."""

    def __call__(self, provider: BaseLLMProvider, request: GenerationRequest) -> None:
        try:
            cost = provider.estimate_cost(request)
        except Exception as exc:  # an unbounded call cannot be admitted under a hard budget
            logger.warning("cost estimate of a continuation on %s failed", provider.name, exc_info=True)
            raise BudgetExceededError(
                f"the cost of a continuation on {provider.name} could not be estimated "
                f"({type(exc).__name__}), so the hard budget cannot admit it",
                tenant_id=self.tenant, limit_usd=self.limit_usd,
            ) from exc
        if not (math.isfinite(cost) and cost <= self.limit_usd):
            raise BudgetExceededError(
                f"a continuation on {provider.name} may cost more than the whole monthly budget "
                f"of {self.limit_usd:.2f} USD", tenant_id=self.tenant, limit_usd=self.limit_usd,
            )
        self.reservations.append(self.tracker.reserve(
            self.tenant, cost, agent_id=self.agent, route=self.route))
