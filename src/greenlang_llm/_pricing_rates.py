"""Money and price records for :mod:`greenlang_llm.pricing`: the arithmetic half.

Kept apart from the catalog and the override/cache state because this part is
pure: dollars ↔ integer nano-dollars, the public price records, and the
compilation of a price into integer rates that makes each call's cost plain
integer arithmetic (see ``pricing``'s docstring for why money is exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import NamedTuple

from ._errors import InvalidRequestError

__all__ = [
    "NANOS_PER_USD",
    "Cost",
    "ModelPrice",
    "PriceTier",
    "nanos_to_decimal",
    "nanos_to_usd",
    "usd_to_nanos",
]

NANOS_PER_USD = 1_000_000_000
_RATE_FIELDS = (
    "input_per_mtok",
    "output_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
)


# ---------------------------------------------------------------------------- money helpers


def _to_decimal(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InvalidRequestError(f"{what} must be a number, got {type(value).__name__}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidRequestError(f"{what} is not a number: {value!r}") from None
    if not result.is_finite():
        raise InvalidRequestError(f"{what} must be finite, got {value!r}")
    return result


def usd_to_nanos(amount: float | int | str | Decimal) -> int:
    """Dollars → integer nano-dollars, exactly: floats go through ``str`` (0.1 → 100_000_000)."""
    value = _to_decimal(amount, "amount") * NANOS_PER_USD
    return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))


def nanos_to_usd(nanos: int) -> float:
    """Nano-dollars → the nearest float (correctly rounded: 3_000_000 → 0.003)."""
    return nanos / NANOS_PER_USD


def nanos_to_decimal(nanos: int) -> Decimal:
    """Nano-dollars → an exact ``Decimal`` (for CSV/JSON money strings)."""
    return Decimal(nanos).scaleb(-9)


def _div_half_even(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    twice = remainder * 2
    if twice > denominator or (twice == denominator and quotient & 1):
        quotient += 1
    return quotient


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
    # $/MTok * 1e9 nanos/$ / 1e6 tokens/MTok = $/MTok * 1000 nanos per token; prices with more
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
