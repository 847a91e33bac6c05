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

Reading order: the price records, their compilation into integer rates, the
catalog's shapes (the one place that knows them), overrides and the per-model
cache, then the per-call arithmetic. Dollar ↔ nano-dollar conversion is
:mod:`greenlang_llm.money`'s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from ._errors import InvalidRequestError
from ._types import TokenUsage
from .money import NANOS_PER_USD, nanos_to_usd, parse_usd

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
    "price_usage",
    "reset_price_cache",
    "set_price_override",
]

logger = logging.getLogger(__name__)

_RATE_FIELDS = (
    "input_per_mtok",
    "output_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
)


# ---------------------------------------------------------------------------- price records


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Rates that apply to *all* tokens of a call once its prompt exceeds ``above_input_tokens``.

    This is the catalog's "cliff" model (e.g. long-context pricing past 200K tokens).
    """

    above_input_tokens: int
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    cache_write_1h_per_mtok: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens for one model. A missing cache rate falls back as documented.

    ``cache_read`` → input rate; ``cache_write`` → input rate; ``cache_write_1h`` →
    ``cache_write`` rate. ``source`` is ``"catalog"`` or ``"override"``;
    ``catalog_id`` names the catalog entry used (``"anthropic/claude-3-5-sonnet"``).
    """

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    cache_write_1h_per_mtok: Decimal | None = None
    tiers: tuple[PriceTier, ...] = ()
    context_window: int | None = None
    source: str = "catalog"
    catalog_id: str | None = None

    @property
    def input_per_1k(self) -> Decimal:
        return self.input_per_mtok / 1000

    @property
    def output_per_1k(self) -> Decimal:
        return self.output_per_mtok / 1000


class Cost(NamedTuple):
    """An exact cost in integer nano-dollars; ``total == input + output``."""

    input_nanos: int
    output_nanos: int
    total_nanos: int


_ZERO = Cost(0, 0, 0)
_new_cost = tuple.__new__  # Cost(...) without NamedTuple's Python-level __new__ (hot path)


class _Rates(NamedTuple):
    """A price compiled for integer math: ``tokens * level_rate / divisor`` = nano-dollars."""

    levels: tuple[tuple[int, int, int, int, int], ...]  # (in, out, cache_read, cache_write, write_1h)
    starts: tuple[int, ...]  # levels[i + 1] applies when input_tokens > starts[i]
    divisor: int  # a power of ten; 1 for any price with at most 3 decimals per MTok


def _effective(rates: tuple[Decimal | None, ...]) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
    inp, out, read, write, write_1h = rates
    if inp is None or out is None:
        raise ValueError("a price needs input and output rates")
    read = inp if read is None else read
    write = inp if write is None else write
    write_1h = write if write_1h is None else write_1h
    return inp, out, read, write, write_1h


def _compile(price: ModelPrice) -> _Rates:
    decimal_levels = [_effective(tuple(getattr(price, f) for f in _RATE_FIELDS))]
    decimal_levels += [_effective(tuple(getattr(t, f) for f in _RATE_FIELDS)) for t in price.tiers]
    # $/MTok * NANOS_PER_USD / 1e6 tokens/MTok = $/MTok * 1000 nanos per token; prices with more
    # than 3 decimals keep a power-of-ten divisor so the per-token rates stay exact integers.
    decimals = max([0, *(-int(r.as_tuple().exponent) for level in decimal_levels for r in level)])
    shift = max(0, decimals - 3)
    scale = Decimal(1000) * Decimal(10) ** shift
    levels = tuple(
        (int(a * scale), int(b * scale), int(c * scale), int(d * scale), int(e * scale))
        for a, b, c, d, e in decimal_levels
    )
    return _Rates(
        levels=levels,
        starts=tuple(t.above_input_tokens for t in price.tiers),
        divisor=10**shift,
    )


def _div_half_even(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    twice = remainder * 2
    if twice > denominator or (twice == denominator and quotient & 1):
        quotient += 1
    return quotient


# ---------------------------------------------------------------------------- the catalog

_CATALOG_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok")


def _rate_at(value: Any, above: int | None) -> Decimal | None:
    """A catalog price (plain or tiered) for prompts longer than ``above`` tokens."""
    tiers = getattr(value, "tiers", None)
    if tiers is None:
        return value if isinstance(value, Decimal) else None
    chosen: Decimal = value.base
    for tier in tiers:
        if above is not None and above >= tier.start:
            chosen = tier.price
    return chosen


def _rates_at(raw: list[Any], above: int | None) -> dict[str, Any]:
    return {name: _rate_at(value, above) for name, value in zip(_RATE_FIELDS, raw, strict=True)}


def _from_catalog(provider: str, model_id: str) -> ModelPrice | None:
    """The catalog's price of a model: plain or tiered, by provider or (OpenAI-compatible
    servers) by model name alone; None for a model it cannot price per token."""
    from genai_prices import data_snapshot  # lazy: ~200 ms with its data

    snapshot = data_snapshot.get_snapshot()
    candidates: list[str | None] = []
    if provider and data_snapshot.find_provider_by_id(snapshot.providers, provider) is not None:
        candidates.append(provider)
    candidates.append(None)  # OpenAI-compatible servers: match on the model name alone
    for provider_id in candidates:
        try:
            found_provider, model = snapshot.find_provider_model(model_id, None, provider_id, None)
        except LookupError:
            continue
        prices = model.get_prices(datetime.now(tz=UTC))
        raw = [getattr(prices, key, None) for key in _CATALOG_KEYS]
        if raw[0] is None or raw[1] is None:
            continue  # not a per-token text model (images, audio): we cannot price it
        starts = sorted({t.start for r in raw for t in (getattr(r, "tiers", None) or ())})
        return ModelPrice(
            **_rates_at(raw, None),
            tiers=tuple(PriceTier(start, **_rates_at(raw, start)) for start in starts),
            context_window=model.context_window,
            source="catalog",
            catalog_id=f"{found_provider.id}/{model.id}",
        )
    return None


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
        return None if value is None else _check_rate(parse_usd(value, what), what)

    price = ModelPrice(
        input_per_mtok=_check_rate(parse_usd(input_per_mtok, "input_per_mtok"), "input_per_mtok"),
        output_per_mtok=_check_rate(parse_usd(output_per_mtok, "output_per_mtok"), "output_per_mtok"),
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
                kwargs[key.replace("_per_1k", "_per_mtok")] = parse_usd(value, key) * 1000
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
    reasoning_tokens: int = 0,
) -> TokenUsage:
    """A :class:`TokenUsage` with costs; see :func:`cost_nanos` for the exact numbers.

    ``reasoning_tokens`` (thinking) are part of ``output_tokens`` and priced with them, as every
    provider bills them; they are carried for reports only."""
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
    # TokenUsage's own validation (over half the time of this call) is skipped on purpose,
    # and money.nanos_to_usd is inlined (same division) for the same reason.
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
    usage.reasoning_tokens = min(max(reasoning_tokens, 0), output_tokens)
    return usage


def estimate_cost_usd(provider: str, model_id: str, input_tokens: int, max_output_tokens: int) -> float:
    """Worst-case cost of a call: the prompt uncached at the input rate plus ``max_output_tokens``."""
    return nanos_to_usd(cost_nanos(provider, model_id, input_tokens, max_output_tokens).total_nanos)
