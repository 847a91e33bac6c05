from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from greenlang_llm import InvalidRequestError, TokenUsage
from greenlang_llm.ledger.records import build_record, from_us, ledger_nanos, to_us, to_utc
from greenlang_llm.money import nanos_to_str


def test_ledger_nanos_keeps_what_the_caller_wrote() -> None:
    assert ledger_nanos(0.1) == 100_000_000
    assert ledger_nanos(0.0105) == 10_500_000
    assert ledger_nanos(3) == 3_000_000_000


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.01, "abc", None, True])
def test_ledger_nanos_rejects_non_money(bad: object) -> None:
    with pytest.raises(InvalidRequestError):
        ledger_nanos(bad)


def test_decimal_strings_are_exact_without_exponent() -> None:
    assert nanos_to_str(10_500_000) == "0.0105"
    assert nanos_to_str(0) == "0.0"
    assert nanos_to_str(3_000_000_001) == "3.000000001"


def test_timestamps_round_trip_and_naive_means_utc() -> None:
    aware = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    assert from_us(to_us(aware)) == aware
    assert to_us(datetime(2026, 3, 4, 5, 6, 7, 891011)) == to_us(aware)
    plus2 = aware.astimezone(timezone(timedelta(hours=2)))
    assert to_us(plus2) == to_us(aware)
    assert to_utc(date(2026, 3, 4), end_of_day=True) == datetime(2026, 3, 5, tzinfo=UTC)


def test_build_record_validates_every_field() -> None:
    usage = TokenUsage(1, 2, 3, 0.1, 0.2, 0.3)
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    rec = build_record("p", "t", "a", "m", usage, ts)
    assert rec.total_cost_nanos == 300_000_000
    with pytest.raises(InvalidRequestError, match="tenant_id must not be empty"):
        build_record("p", " ", "a", "m", usage, ts)
    with pytest.raises(InvalidRequestError, match="provider must be a string"):
        build_record(3, "t", "a", "m", usage, ts)
    with pytest.raises(InvalidRequestError, match="usage must be a TokenUsage"):
        build_record("p", "t", "a", "m", {"input_tokens": 1}, ts)
