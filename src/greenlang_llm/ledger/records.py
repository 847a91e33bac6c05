"""Ledger rows, validated: what every backend stores, and the checks an input passes to get there.

Money enters as floats (the ``TokenUsage`` edge) and is stored as integer
nano-dollars by :mod:`greenlang_llm.money`'s one conversion rule; what the ledger
adds is its own rule for a held amount (:func:`ledger_nanos`: never negative,
never near BIGINT's range), since a conversion cannot know what an amount is for.
Timestamps are epoch microseconds in UTC (:func:`to_us`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .. import money
from .._errors import InvalidRequestError
from .._types import TokenUsage
from ..money import parse_usd

__all__ = [
    "BudgetRecord",
    "UsageRecord",
    "build_record",
    "check_dropped_params",
    "check_tenant",
    "check_thresholds",
    "from_us",
    "ledger_nanos",
    "to_us",
    "to_utc",
]

_MAX_NANOS = 2**62  # far above any real bill; keeps SQL SUM() inside BIGINT
_MAX_COUNT = 2**53


def ledger_nanos(value: Any, name: str = "amount") -> int:
    """An amount the ledger or the budgets will hold, in nano-dollars: ``usd_to_nanos``'s rule,
    plus what a held amount must be: not negative and far below BIGINT's range.

    The sign is judged on the amount as written, so ``-1e-10`` (0 nanos once rounded)
    is refused like any other negative cost. Raises ``InvalidRequestError`` naming ``name``.
    """
    nanos = money.usd_to_nanos(value, name)
    if nanos < 0 or (nanos == 0 and value != 0 and parse_usd(value, name) < 0):
        raise InvalidRequestError(f"{name} must not be negative, got {value}")
    if nanos > _MAX_NANOS:
        raise InvalidRequestError(f"{name} is implausibly large: {value}")
    return nanos


def check_tenant(tenant_id: Any) -> str:
    """``tenant_id`` if it is a non-empty string; else the caller's mistake, named."""
    if not isinstance(tenant_id, str) or not tenant_id.strip():
        raise InvalidRequestError(f"tenant_id must be a non-empty string, got {tenant_id!r}")
    return tenant_id


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_utc(value: datetime | date, *, end_of_day: bool = False) -> datetime:
    """Aware UTC datetime; naive means UTC; a ``date`` is its midnight (or the next one with end_of_day)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return start + timedelta(days=1) if end_of_day else start
    raise InvalidRequestError(f"expected a datetime or date, got {type(value).__name__}")


def to_us(value: datetime) -> int:
    """Microseconds since the Unix epoch (UTC): the ledger's timestamp column."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


@dataclass(slots=True)
class UsageRecord:
    """One row of the ledger, already validated and converted to integers (treat as immutable).

    ``dropped_params``: the request fields the serving provider could not honour and the
    gateway left out (hints such as ``seed``: the response's ``x-greenlang-dropped-params``),
    in the order given; ``()`` when none. Stored as one comma-separated TEXT column (NULL when
    none), which is why a name may hold no comma (:func:`check_dropped_params`).
    """

    ts_us: int
    provider: str
    tenant_id: str
    agent_id: str
    model_id: str
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    input_cost_nanos: int
    output_cost_nanos: int
    total_cost_nanos: int
    estimated: bool = False
    request_id: str | None = None
    dropped_params: tuple[str, ...] = ()

    @property
    def timestamp(self) -> datetime:
        return from_us(self.ts_us)


@dataclass(frozen=True, slots=True)
class BudgetRecord:
    tenant_id: str
    limit_nanos: int
    thresholds: tuple[float, ...]
    hard_limit: bool


def _text(name: str, value: Any, *, required: bool = True) -> str:
    if type(value) is str and len(value) <= 512 and (not required or value.strip()):
        return value  # fast path: a valid name
    if not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise InvalidRequestError(f"{name} must not be empty")
    if len(value) > 512:
        raise InvalidRequestError(f"{name} is too long ({len(value)} characters, at most 512)")
    return value


def _count(name: str, value: Any) -> int:
    if type(value) is int and 0 <= value <= _MAX_COUNT:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"usage.{name} must be an integer, got {type(value).__name__}")
    if value < 0 or value > _MAX_COUNT:
        raise InvalidRequestError(f"usage.{name} must be between 0 and 2**53, got {value}")
    return value


_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\[\]-]{0,63}")
_MAX_DROPPED = 64


def check_dropped_params(value: Any) -> tuple[str, ...]:
    """``dropped_params`` as the ledger keeps it: a tuple of field names, duplicates removed
    (first occurrence kept), ``()`` for None or nothing.

    A name is identifier-like (a letter or ``_``, then letters, digits and ``_ . - [ ]``, at most
    64 characters: ``seed``, ``messages[].name``), so it can hold no comma and the stored
    comma-separated column splits back into exactly these names; at most 64 names. A lone
    string is refused rather than read as its characters. Raises ``InvalidRequestError``
    naming ``dropped_params``.
    """
    if value is None or value == ():
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidRequestError(
            f"dropped_params must be a list of field names such as ['seed'], got {type(value).__name__}"
        )
    names: list[str] = []
    for name in value:
        if not isinstance(name, str):
            raise InvalidRequestError(
                f"dropped_params: each name must be a string, got {type(name).__name__}"
            )
        if _PARAM_NAME.fullmatch(name) is None:
            raise InvalidRequestError(
                f"dropped_params: {name[:80]!r} is not a field name (a letter or '_', then letters, digits "
                "or '_.-[]', at most 64 characters, no comma)"
            )
        if name not in names:
            names.append(name)
            if len(names) > _MAX_DROPPED:
                raise InvalidRequestError(f"dropped_params: more than {_MAX_DROPPED} names")
    return tuple(names)


def build_record(
    provider: Any,
    tenant_id: Any,
    agent_id: Any,
    model_id: Any,
    usage: Any,
    ts: datetime,
    request_id: Any = None,
    dropped_params: Any = (),
) -> UsageRecord:
    """Validate one usage and turn it into a ledger row; raises ``InvalidRequestError`` (a ValueError).

    ``dropped_params``: an iterable of field names (:func:`check_dropped_params`), ``()`` by default.
    """
    if not isinstance(usage, TokenUsage):
        raise InvalidRequestError(f"usage must be a TokenUsage, got {type(usage).__name__}")
    if request_id is not None:
        request_id = _text("request_id", request_id)
    if not isinstance(ts, datetime):
        raise InvalidRequestError(f"timestamp must be a datetime, got {type(ts).__name__}")
    return UsageRecord(
        ts_us=to_us(ts),
        provider=_text("provider", provider),
        tenant_id=_text("tenant_id", tenant_id),
        agent_id=_text("agent_id", agent_id, required=False),
        model_id=_text("model_id", model_id, required=False),
        input_tokens=_count("input_tokens", usage.input_tokens),
        output_tokens=_count("output_tokens", usage.output_tokens),
        total_tokens=_count("total_tokens", usage.total_tokens),
        cache_read_tokens=_count("cache_read_tokens", usage.cache_read_tokens),
        cache_write_tokens=_count("cache_write_tokens", usage.cache_write_tokens),
        input_cost_nanos=ledger_nanos(usage.input_cost_usd, "usage.input_cost_usd"),
        output_cost_nanos=ledger_nanos(usage.output_cost_usd, "usage.output_cost_usd"),
        total_cost_nanos=ledger_nanos(usage.total_cost_usd, "usage.total_cost_usd"),
        estimated=bool(usage.estimated),
        request_id=request_id,
        dropped_params=() if dropped_params == () else check_dropped_params(dropped_params),
    )


def check_thresholds(values: Any) -> tuple[float, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InvalidRequestError("alert_thresholds must be a list of numbers, e.g. [0.8, 0.9, 1.0]")
    out: list[float] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not (0 < v <= 2):
            raise InvalidRequestError(f"each alert threshold must be a number in (0, 2], got {v!r}")
        out.append(float(v))
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise InvalidRequestError(f"alert_thresholds must be sorted ascending without duplicates, got {out}")
    return tuple(out)
