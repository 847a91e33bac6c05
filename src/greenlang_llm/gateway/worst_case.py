"""What a request may cost at most, and what the caller reads when a hard budget refuses it.

``GatewayService.reserve`` holds the worst case computed here (the most expensive provider
that may answer, with the request's ``max_tokens``: failover may land on any member, and a
too-long prompt on any context-window fallback). Two
prices keep that cheap where it can be and exact where it matters: ``prompt_byte_bound``
bounds the prompt's tokens without a tokenizer, and only a budget that refuses the bound
makes ``GatewayService.reserve`` count exactly.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .._errors import BudgetExceededError, InvalidRequestError
from .._types import GenerationRequest
from .errors import ApiError

if TYPE_CHECKING:
    from .targets import Target

__all__ = ["budget_error", "budget_exhausted_message", "never_fits", "prompt_byte_bound", "worst_case"]

logger = logging.getLogger(__name__)


def worst_case(target: Target, request: GenerationRequest, input_bound: int | None) -> float:
    """Max over members of prompt + ``max_tokens`` cost; ``input_bound`` replaces the token count.

    The members are every provider that may answer (``Target.reachable``): a route's
    ``context_window_fallbacks`` too, so a prompt too long for the route's own models and
    answered by a dearer fallback never costs more than its reservation.

    The bound is priced under the id the member's usage is billed under (``catalog_id``:
    an OpenAI-compatible server's ``provider_name``), as ``estimate_cost`` prices it.
    """
    from ..pricing import estimate_cost_usd
    from ..providers.base_provider import BaseLLMProvider as _Base

    worst = 0.0
    for _, provider in target.reachable():
        try:
            if input_bound is not None and type(provider).estimate_cost is _Base.estimate_cost:
                catalog_id = provider.catalog_id
                cost = estimate_cost_usd(
                    catalog_id, provider.model_id, input_bound, request.max_output_tokens)
            else:
                cost = provider.estimate_cost(request)
        except InvalidRequestError:
            raise
        except Exception:  # pricing must never take the gateway down
            logger.warning("cost estimate failed for %s", target.name, exc_info=True)
            continue
        worst = max(worst, cost)
    return worst


def prompt_byte_bound(request: GenerationRequest) -> int | None:
    """An upper bound on prompt tokens from UTF-8 sizes, or None if a block is not plain text.

    A BPE token covers at least one byte, so the prompt's size in bytes (plus a margin per
    message for the chat template) is never below its token count under any tokenizer. Tool
    definitions, a response schema and the caller's fields no neutral field covers count as their
    JSON bytes, tools with the provider's tool-use prompt besides; an image or a document makes
    the bound None (the exact count then bounds it per block: ``tokens.IMAGE_TOKENS``).
    """
    total = 16 + (len(request.system.encode()) if request.system else 0)
    if request.rich:
        from ..tokens import TOOL_USE_PROMPT_TOKENS, json_text

        if request.tools or request.response_format:
            schemas = json_text([request.tools, request.response_format])
            total += TOOL_USE_PROMPT_TOKENS + len(schemas.encode())
        origin = request.origin
        if origin is not None and origin.unknown:  # fields a provider of the caller's API receives
            total += len(json_text([origin.body.get(name) for name in origin.unknown]).encode())
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


def budget_error(message: str) -> ApiError:
    """A hard budget's refusal: 429 in both APIs' shapes, distinct from a rate limit by its code."""
    return ApiError(
        429, message, "insufficient_quota", "budget_exceeded", "rate_limit_error", kind="budget_exceeded"
    )


def never_fits(tenant: str, request: GenerationRequest, worst: float, limit: float) -> str:
    """The 429 text when the worst case exceeds the whole budget: waiting would never help."""
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
