"""The ``genai-prices`` catalog read into :class:`ModelPrice` records, for :mod:`greenlang_llm.pricing`.

Apart from the rest because it is the one place that knows the catalog's shapes
(plain or tiered prices, provider lookup, dated model ids), and because the
catalog is heavy (~200 ms with its data): it is imported inside
:func:`_from_catalog`, so importing this module (or ``pricing``) stays cheap.
Caching, overrides and the "unknown costs 0" rule live in ``pricing``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ._pricing_rates import _RATE_FIELDS, ModelPrice, PriceTier

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
