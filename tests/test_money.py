"""Money: exact round trips for every nano amount, one rule for odd input, every input form agrees."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenlang_llm import InvalidRequestError
from greenlang_llm.ledger.records import ledger_nanos
from greenlang_llm.money import (
    NANOS_PER_USD,
    float_usd_to_nanos,
    nanos_to_decimal,
    nanos_to_str,
    nanos_to_usd,
    parse_usd,
    usd_to_nanos,
)

ANY_NANOS = st.integers(-(2**62), 2**62)
FLOAT_SAFE_NANOS = st.integers(-(10**15) + 1, 10**15 - 1)  # below a million dollars
FINITE_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


def _decimal_rule(value: Decimal) -> int:
    return int((value * NANOS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


@given(ANY_NANOS)
def test_every_nano_amount_round_trips_through_its_exact_forms(nanos: int) -> None:
    assert usd_to_nanos(nanos_to_decimal(nanos)) == nanos
    assert usd_to_nanos(nanos_to_str(nanos)) == nanos
    assert Decimal(nanos_to_str(nanos)) == nanos_to_decimal(nanos)


@given(FLOAT_SAFE_NANOS)
def test_every_nano_amount_below_a_million_dollars_round_trips_through_a_float(nanos: int) -> None:
    usd = nanos_to_usd(nanos)
    assert usd_to_nanos(usd) == nanos
    assert float_usd_to_nanos(usd) == nanos
    assert Decimal(repr(usd)) == nanos_to_decimal(nanos)  # the float prints as the exact amount


@given(FINITE_FLOATS)
def test_float_str_and_decimal_inputs_agree(value: float) -> None:
    expected = _decimal_rule(Decimal(repr(value)))
    assert usd_to_nanos(value) == expected
    assert usd_to_nanos(repr(value)) == expected
    assert usd_to_nanos(Decimal(repr(value))) == expected


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**9), max_value=10**9, places=12))
def test_decimals_round_half_even_and_sign_is_symmetric(value: Decimal) -> None:
    expected = _decimal_rule(value)
    assert usd_to_nanos(value) == usd_to_nanos(str(value)) == expected
    assert usd_to_nanos(-value) == -expected


@given(st.integers(-(10**9), 10**9))
def test_integers_are_whole_dollars(dollars: int) -> None:
    assert usd_to_nanos(dollars) == dollars * NANOS_PER_USD == usd_to_nanos(str(dollars))


def test_half_a_nano_rounds_to_even() -> None:
    assert usd_to_nanos(Decimal("0.0000000005")) == 0
    assert usd_to_nanos(Decimal("0.0000000015")) == 2
    assert usd_to_nanos("-0.0000000025") == -2


@pytest.mark.parametrize(
    "bad", [math.nan, math.inf, -math.inf, "nan", "-inf", "Infinity", Decimal("NaN"), Decimal("-Infinity")]
)
def test_nan_and_infinities_are_not_money_in_any_form(bad: object) -> None:
    with pytest.raises(InvalidRequestError, match="cost must be a finite number"):
        usd_to_nanos(bad, "cost")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="cost must be a finite number"):
        ledger_nanos(bad, "cost")


@pytest.mark.parametrize("bad", [True, None, "ten", b"1", [1], object()])
def test_non_numbers_are_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidRequestError, match="cost must be a number"):
        usd_to_nanos(bad, "cost")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="cost must be a number"):
        parse_usd(bad, "cost")


@given(st.one_of(
    st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False),
    st.decimals(max_value=Decimal("-1e-20"), allow_nan=False, allow_infinity=False),
))  # fmt: skip
def test_negative_amounts_convert_but_the_ledger_refuses_them(value: float | Decimal) -> None:
    assert usd_to_nanos(value) <= 0  # a conversion keeps the sign (tiny ones round to 0)
    with pytest.raises(InvalidRequestError, match="cost must not be negative"):
        ledger_nanos(value, "cost")
    with pytest.raises(InvalidRequestError, match="cost must not be negative"):
        ledger_nanos(str(value), "cost")


@pytest.mark.parametrize("zero", [0, 0.0, -0.0, "0", "-0", Decimal("-0.000")])
def test_zero_in_any_form_is_a_valid_ledger_amount(zero: object) -> None:
    assert ledger_nanos(zero) == 0


def test_the_ledger_refuses_amounts_near_bigint() -> None:
    assert ledger_nanos(Decimal(2**62) / NANOS_PER_USD) == 2**62
    with pytest.raises(InvalidRequestError, match="implausibly large"):
        ledger_nanos(Decimal(2**62 + 1) / NANOS_PER_USD)


def test_float_fast_path_is_for_costs_the_library_made() -> None:
    assert float_usd_to_nanos(0.0105) == 10_500_000
    assert float_usd_to_nanos(0.1 + 0.2) == 300_000_000  # a sum of costs still lands on its nanos
