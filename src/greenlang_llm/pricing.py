"""What a call costs, exactly, from the maintained ``genai-prices`` catalog.

Why it looks like this:

- **Exact money.** Prices are ``Decimal`` dollars per million tokens. At the
  first lookup of a (provider, model) they become integers at a common scale,
  so each call is pure integer arithmetic, rounded once per direction to whole
  nano-dollars (1e-9 USD, half-even). ``total == input + output`` always holds
  in nanos, and the ledger adds nanos, never floats. Floats appear only in the
  returned :class:`TokenUsage`, at the API edge.
- **Fast after the first lookup.** The catalog costs ~200 ms to load, so it is
  imported lazily (``import greenlang_llm.pricing`` does not import it) and
  each (provider, model) is resolved once — unknown ones too — and cached.
- **Never crash on price.** An unknown model costs 0 and logs exactly one
  warning per model; routing and budgets keep working.
- **Overrides win.** ``set_price_override`` (code) and
  ``apply_price_overrides`` (a config mapping) replace the catalog for a model.

Token semantics follow :mod:`greenlang_llm._types`: ``input_tokens`` counts all
prompt tokens; ``cache_read_tokens`` and ``cache_write_tokens`` are subsets of
it, priced at their own rates; the rest is priced at the input rate.

This module is the public face and holds what changes at run time (overrides,
the per-model cache) plus the per-call arithmetic; the pure money helpers and
price records are in ``_pricing_rates``, the catalog's shapes in ``_pricing_catalog``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import fields
from decimal import Decimal
from typing import Any

from ._errors import InvalidRequestError
from ._pricing_catalog import _from_catalog
from ._pricing_rates import (
    _RATE_FIELDS,
    _ZERO,
    NANOS_PER_USD,
    Cost,
    ModelPrice,
    PriceTier,
    _compile,
    _div_half_even,
    _new_cost,
    _Rates,
    _to_decimal,
    nanos_to_decimal,
    nanos_to_usd,
    usd_to_nanos,
)
from ._types import TokenUsage

__all__ = [
    "Cost",
    "ModelPrice",
    "PriceTier",
    "apply_price_overrides",
    "clear_price_overrides",
    "context_window",
    "cost_nanos",
    "estimate_cost_usd",
    "get_price",
    "nanos_to_decimal",
    "nanos_to_usd",
    "price_usage",
    "reset_price_cache",
    "set_price_override",
    "usd_to_nanos",
]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- state

_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[ModelPrice | None, _Rates | None]] = {}
_overrides: dict[tuple[str | None, str], ModelPrice] = {}
_warned: set[str] = set()


def reset_price_cache() -> None:
    """Forget resolved prices and issued warnings (tests; after changing the catalog)."""
    with _lock:
        _cache.clear()
        _warned.clear()


def set_price_override(
    model_id: str,
    *,
    input_per_mtok: float | int | str | Decimal,
    output_per_mtok: float | int | str | Decimal,
    cache_read_per_mtok: float | int | str | Decimal | None = None,
    cache_write_per_mtok: float | int | str | Decimal | None = None,
    cache_write_1h_per_mtok: float | int | str | Decimal | None = None,
    context_window: int | None = None,
    provider: str | None = None,
) -> ModelPrice:
    """Price ``model_id`` (for every provider, or only ``provider``) at these USD/MTok rates.

    Overrides beat the catalog. Floats are read through ``str`` so ``0.3`` is 0.3.
    """

    def opt(value: float | int | str | Decimal | None, what: str) -> Decimal | None:
        return None if value is None else _check_rate(_to_decimal(value, what), what)

    price = ModelPrice(
        input_per_mtok=_check_rate(_to_decimal(input_per_mtok, "input_per_mtok"), "input_per_mtok"),
        output_per_mtok=_check_rate(_to_decimal(output_per_mtok, "output_per_mtok"), "output_per_mtok"),
        cache_read_per_mtok=opt(cache_read_per_mtok, "cache_read_per_mtok"),
        cache_write_per_mtok=opt(cache_write_per_mtok, "cache_write_per_mtok"),
        cache_write_1h_per_mtok=opt(cache_write_1h_per_mtok, "cache_write_1h_per_mtok"),
        context_window=context_window,
        source="override",
        catalog_id=None,
    )
    with _lock:
        _overrides[(provider.lower() if provider else None, model_id.lower())] = price
        _cache.clear()
    return price


def _check_rate(value: Decimal, what: str) -> Decimal:
    if value < 0:
        raise InvalidRequestError(f"{what} must not be negative, got {value}")
    return value


def apply_price_overrides(config: Mapping[str, Mapping[str, Any]]) -> None:
    """Overrides from configuration: ``{model_id: {"input_per_mtok": 3, "output_per_mtok": 15, ...}}``.

    Keys are the ``set_price_override`` keywords; ``*_per_1k`` spellings are accepted
    too (the seed's table is per 1K tokens) and multiplied by 1000 exactly.
    """
    allowed = {f.name for f in fields(ModelPrice)} & (set(_RATE_FIELDS) | {"context_window"})
    for model_id, entry in config.items():
        kwargs: dict[str, Any] = {}
        for key, value in entry.items():
            if key == "provider":
                kwargs["provider"] = value
            elif key.endswith("_per_1k") and key.replace("_per_1k", "_per_mtok") in allowed:
                kwargs[key.replace("_per_1k", "_per_mtok")] = _to_decimal(value, key) * 1000
            elif key in allowed:
                kwargs[key] = value
            else:
                raise InvalidRequestError(f"price override for {model_id!r}: unknown key {key!r}")
        for needed in ("input_per_mtok", "output_per_mtok"):
            if needed not in kwargs:
                raise InvalidRequestError(f"price override for {model_id!r}: {needed} is required")
        set_price_override(model_id, **kwargs)


def clear_price_overrides() -> None:
    """Remove every override (the catalog applies again)."""
    with _lock:
        _overrides.clear()
        _cache.clear()


# ---------------------------------------------------------------------------- resolution


def _resolve(provider: str, model_id: str) -> tuple[ModelPrice | None, _Rates | None]:
    key = (provider, model_id)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
        prov, model = provider.lower(), model_id.lower()
        price = _overrides.get((prov, model)) or _overrides.get((None, model))
        if price is None:
            try:
                price = _from_catalog(prov, model)
            except Exception:  # a broken catalog must not break calls
                logger.exception("price catalog lookup failed for %s/%s", provider, model_id)
                price = None
        if price is None and model not in _warned:
            _warned.add(model)
            logger.warning(
                "no price known for model %r (provider %r): its cost is counted as 0; "
                "add a price override to fix",
                model_id,
                provider,
            )
        entry = (price, None if price is None else _compile(price))
        _cache[key] = entry
        return entry


def get_price(provider: str, model_id: str) -> ModelPrice | None:
    """The price used for this (provider, model), or None when unknown (cached either way)."""
    entry = _cache.get((provider, model_id)) or _resolve(provider, model_id)
    return entry[0]


def context_window(provider: str, model_id: str) -> int | None:
    """Maximum prompt tokens of the model, if the catalog or an override knows it."""
    price = get_price(provider, model_id)
    return None if price is None else price.context_window


# ---------------------------------------------------------------------------- pricing


def cost_nanos(
    provider: str,
    model_id: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
) -> Cost:
    """The exact cost in nano-dollars; unknown models cost 0.

    ``cache_write_1h_tokens`` is the part of ``cache_write_tokens`` written with a
    1-hour TTL (Anthropic bills those at a higher rate).
    """
    entry = _cache.get((provider, model_id)) or _resolve(provider, model_id)
    if not (
        type(input_tokens)
        is type(output_tokens)
        is type(cache_read_tokens)
        is type(cache_write_tokens)
        is type(cache_write_1h_tokens)
        is int
        and input_tokens >= cache_read_tokens + cache_write_tokens
        and output_tokens >= 0 <= cache_read_tokens
        and cache_write_tokens >= cache_write_1h_tokens >= 0
    ):
        raise InvalidRequestError(
            "token counts must be non-negative integers, with cache_read + cache_write <= "
            f"input_tokens and cache_write_1h <= cache_write; got input={input_tokens!r}, "
            f"output={output_tokens!r}, cache_read={cache_read_tokens!r}, "
            f"cache_write={cache_write_tokens!r}, cache_write_1h={cache_write_1h_tokens!r}"
        )
    rates = entry[1]
    if rates is None:
        return _ZERO
    levels, starts, divisor = rates
    level = levels[0]
    if starts:
        for i, start in enumerate(starts):
            if input_tokens > start:
                level = levels[i + 1]
    in_rate, out_rate, read_rate, write_rate, write_1h_rate = level
    if cache_read_tokens or cache_write_tokens:
        in_scaled = (
            (input_tokens - cache_read_tokens - cache_write_tokens) * in_rate
            + cache_read_tokens * read_rate
            + (cache_write_tokens - cache_write_1h_tokens) * write_rate
            + cache_write_1h_tokens * write_1h_rate
        )
    else:
        in_scaled = input_tokens * in_rate
    out_scaled = output_tokens * out_rate
    if divisor == 1:
        in_nanos, out_nanos = in_scaled, out_scaled
    else:
        in_nanos = _div_half_even(in_scaled, divisor)
        out_nanos = _div_half_even(out_scaled, divisor)
    return _new_cost(Cost, (in_nanos, out_nanos, in_nanos + out_nanos))


def price_usage(
    provider: str,
    model_id: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    estimated: bool = False,
    *,
    cache_write_1h_tokens: int = 0,
) -> TokenUsage:
    """A :class:`TokenUsage` with costs; see :func:`cost_nanos` for the exact numbers."""
    cost = cost_nanos(
        provider,
        model_id,
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_write_tokens,
        cache_write_1h_tokens,
    )
    # cost_nanos has checked every count, and costs from nanos are finite and >= 0, so
    # TokenUsage's own validation (over half the time of this call) is skipped on purpose.
    usage: TokenUsage = object.__new__(TokenUsage)
    usage.input_tokens = input_tokens
    usage.output_tokens = output_tokens
    usage.total_tokens = input_tokens + output_tokens
    usage.input_cost_usd = cost.input_nanos / NANOS_PER_USD
    usage.output_cost_usd = cost.output_nanos / NANOS_PER_USD
    usage.total_cost_usd = cost.total_nanos / NANOS_PER_USD
    usage.cache_read_tokens = cache_read_tokens
    usage.cache_write_tokens = cache_write_tokens
    usage.estimated = bool(estimated)
    return usage


def estimate_cost_usd(provider: str, model_id: str, input_tokens: int, max_output_tokens: int) -> float:
    """Worst-case cost of a call: the prompt uncached at the input rate plus ``max_output_tokens``."""
    return cost_nanos(provider, model_id, input_tokens, max_output_tokens).total_nanos / NANOS_PER_USD
