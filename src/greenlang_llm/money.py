"""Money: integer nano-dollars inside, one rule for turning dollars into them.

Why it looks like this:

- **Integers inside.** A cost is a whole number of nano-dollars (1e-9 USD). Sums of
  integers are exact in Python and in SQL, so a ledger total, a budget's month to
  date and the router's spend never drift; floats appear only at the API edge
  (:class:`~greenlang_llm.TokenUsage`, report fields) and exact decimals in exports.
- **One conversion rule.** :func:`usd_to_nanos` reads an amount as the decimal the
  caller wrote (a float through its shortest ``repr``, so ``0.1`` is 100,000,000
  nanos, not 100,000,000.0000000055), scales it and rounds half-even. It rejects
  what is not money (NaN, infinities, non-numbers) and has no opinion on the sign: a
  conversion cannot know whether a negative amount is a refund or a mistake. The
  places that hold amounts that must not be negative (the ledger, budgets,
  reservations) say so themselves (``ledger.records.ledger_nanos``).
- **A fast path for floats we made.** Costs in a ``TokenUsage`` are ``nanos / 1e9``;
  :func:`float_usd_to_nanos` turns them back with one multiplication. The router
  counts spend per call with it: a ``Decimal`` per call cost about 3% of a routed
  call. :func:`usd_to_nanos` uses the same multiplication when a round trip proves
  it gives the decimal rule's answer, so validated conversions are cheap too.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from ._errors import InvalidRequestError

__all__ = [
    "NANOS_PER_USD",
    "float_usd_to_nanos",
    "nanos_to_decimal",
    "nanos_to_str",
    "nanos_to_usd",
    "parse_usd",
    "usd_to_nanos",
]

NANOS_PER_USD = 1_000_000_000
"""Nano-dollars in one US dollar: the scale of every integer amount in the library."""

_FLOAT_NANOS = float(NANOS_PER_USD)
_FAST_LIMIT = 1e6  # below this, doubles are closer than 1e-9 apart (see usd_to_nanos)


def parse_usd(value: object, what: str = "amount") -> Decimal:
    """A number as the exact ``Decimal`` the caller wrote; ``InvalidRequestError`` naming ``what`` else.

    Floats are read through ``str`` (their shortest round-tripping form), so ``0.3``
    is ``Decimal("0.3")``. Booleans, NaN and infinities are not money.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InvalidRequestError(f"{what} must be a number, got {type(value).__name__}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidRequestError(f"{what} must be a number, got {value!r}") from None
    if not result.is_finite():
        raise InvalidRequestError(f"{what} must be a finite number, got {value}")
    return result


def usd_to_nanos(amount: float | int | str | Decimal, what: str = "amount") -> int:
    """Dollars → integer nano-dollars, exactly: ``parse_usd(amount)`` scaled, rounded half-even.

    ``0.1`` → 100_000_000; ``"1.0000000005"`` → 1_000_000_000 (half-even). Negative
    amounts convert (sign is the caller's rule); NaN, infinities and non-numbers raise
    ``InvalidRequestError`` naming ``what``.
    """
    if type(amount) is float and -_FAST_LIMIT < amount < _FAST_LIMIT:
        # For |x| < 1e6 two decimals of at most 9 places never round to the same double, so
        # when round(x * 1e9) converts back to exactly x it is the decimal rule's answer.
        nanos = round(amount * _FLOAT_NANOS)
        if nanos / _FLOAT_NANOS == amount:
            return nanos
    elif type(amount) is int:
        return amount * NANOS_PER_USD
    scaled = parse_usd(amount, what) * NANOS_PER_USD
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))


def float_usd_to_nanos(value_usd: float) -> int:
    """A float cost this library computed (``nanos / 1e9``) back to its nano-dollars, unchecked.

    One multiplication and a round: exact for every cost ``pricing`` makes (below a
    million dollars), no validation. For amounts a caller supplied use :func:`usd_to_nanos`.
    """
    return round(value_usd * _FLOAT_NANOS)


def nanos_to_usd(nanos: int) -> float:
    """Nano-dollars → the nearest float (correctly rounded: 10_500_000 → 0.0105)."""
    return nanos / NANOS_PER_USD


def nanos_to_decimal(nanos: int) -> Decimal:
    """Nano-dollars → the exact ``Decimal`` (10_500_000 → ``Decimal("0.0105")``)."""
    return Decimal(nanos).scaleb(-9)


def nanos_to_str(nanos: int) -> str:
    """Nano-dollars → an exact decimal string without exponent, at least one decimal place.

    ``10_500_000`` → ``"0.0105"``, ``0`` → ``"0.0"``: the CSV export's money columns.
    """
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), NANOS_PER_USD)
    frac_s = f"{frac:09d}".rstrip("0") or "0"
    return f"{sign}{whole}.{frac_s}"
