"""Month-end spend forecast that leans on recent days.

A linear run-rate (spend so far / time elapsed) reacts slowly when usage
ramps up or stops mid-month. Here the daily rate is a weighted mean over the
days elapsed so far, each complete day weighted ``0.5 ** (age_days / half_life)``
(half-life 3 days by default), and today's partial day counted by the fraction
of it that has elapsed (its rate is ``spend_today / fraction``, weight
``fraction``). The projection is::

    spend_so_far + rate * days_remaining

With constant daily spend this equals the linear run-rate; with a ramp it
follows the recent level. Elapsed time is floored at one hour so the first
minutes of a month (nothing to weigh but those minutes) do not extrapolate a single request into a fortune.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import datetime

__all__ = ["project_month_nanos"]


def project_month_nanos(daily: Mapping[int, int], now: datetime, half_life_days: float = 3.0) -> int:
    """Projected spend for ``now``'s calendar month from ``{day_of_month: nanos}`` (days 1..31)."""
    days_in_month = calendar.monthrange(now.year, now.month)[1]
    today = now.day
    seconds_today = now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6
    elapsed_today = seconds_today / 86_400
    fraction = max(elapsed_today, 1 / 24) if today == 1 else elapsed_today
    spent = sum(daily.values())
    if spent == 0:
        return 0
    weighted = 0.0
    weights = 0.0
    for day in range(1, today):
        w = 0.5 ** ((today - day) / half_life_days)
        weighted += w * daily.get(day, 0)
        weights += w
    later = sum(v for d, v in daily.items() if d >= today)  # today's spend (and any future-dated)
    weighted += later
    weights += fraction
    rate = weighted / weights if weights > 0 else 0.0
    remaining_days = (days_in_month - today) + (1 - elapsed_today)
    return int(spent + rate * max(remaining_days, 0.0))
