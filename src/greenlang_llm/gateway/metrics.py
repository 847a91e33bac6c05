"""Prometheus text exposition, written by hand.

The format is small (``# HELP``, ``# TYPE``, ``name{labels} value``), so a
dependency would buy little; what matters is that recording on the hot path is
a dict increment keyed by a label tuple, and all formatting happens at scrape
time. Gauges that mirror other components (breaker states, budget use) are not
stored here at all: ``GatewayService`` passes them in when ``/metrics`` is read.
Label values are escaped per the spec; nothing secret is ever a label (tenants,
routes and provider names only).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

__all__ = ["LATENCY_BUCKETS", "Histogram", "Metrics", "escape_label"]

LATENCY_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

Labels = tuple[str, ...]


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    inner = ",".join(f'{n}="{escape_label(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + inner + "}"


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Histogram:
    """Cumulative-bucket histogram per label tuple; ``observe`` is a bisect and three adds."""

    __slots__ = ("buckets", "label_names", "series")

    def __init__(self, label_names: Sequence[str], buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.label_names = tuple(label_names)
        self.buckets = tuple(buckets)
        self.series: dict[Labels, list[float]] = {}

    def observe(self, labels: Labels, value: float) -> None:
        row = self.series.get(labels)
        if row is None:
            row = self.series[labels] = [0.0] * (len(self.buckets) + 3)  # buckets…, overflow, count, sum
        row[bisect.bisect_left(self.buckets, value)] += 1
        row[-2] += 1
        row[-1] += value

    def render(self, name: str) -> Iterable[str]:
        for labels, row in sorted(self.series.items()):
            running = 0.0
            for bound, count in zip(self.buckets, row, strict=False):
                running += count
                le = _labels((*self.label_names, "le"), (*labels, _num(bound)))
                yield f"{name}_bucket{le} {_num(running)}"
            yield f"{name}_bucket{_labels((*self.label_names, 'le'), (*labels, '+Inf'))} {_num(row[-2])}"
            yield f"{name}_count{_labels(self.label_names, labels)} {_num(row[-2])}"
            yield f"{name}_sum{_labels(self.label_names, labels)} {_num(row[-1])}"


class Metrics:
    """The gateway's own counters; external gauges are appended at render time."""

    def __init__(self) -> None:
        self.requests: dict[Labels, float] = {}  # api, route, provider, status
        self.errors: dict[Labels, float] = {}  # api, type
        self.tokens: dict[Labels, float] = {}  # tenant, provider, direction
        self.cost: dict[Labels, float] = {}  # tenant, provider
        self.latency = Histogram(("api", "stream"))
        self.ttfb = Histogram(("api",))
        self.in_flight = 0

    @staticmethod
    def _inc(table: dict[Labels, float], labels: Labels, amount: float = 1.0) -> None:
        table[labels] = table.get(labels, 0.0) + amount

    def record_request(self, api: str, route: str, provider: str, status: int) -> None:
        self._inc(self.requests, (api, route, provider, str(status)))

    def record_error(self, api: str, error_type: str) -> None:
        self._inc(self.errors, (api, error_type))

    def record_usage(
        self, tenant: str, provider: str, input_tokens: int, output_tokens: int, cost: float
    ) -> None:
        self._inc(self.tokens, (tenant, provider, "input"), input_tokens)
        self._inc(self.tokens, (tenant, provider, "output"), output_tokens)
        self._inc(self.cost, (tenant, provider), cost)

    def render(
        self,
        breakers: Iterable[tuple[str, str, str]] = (),
        budgets: Iterable[tuple[str, float, float]] = (),
    ) -> str:
        """Exposition text; ``breakers``: (route, provider, state), ``budgets``: (tenant, spent, limit)."""
        out: list[str] = []

        def counter(name: str, help_: str, names: Sequence[str], table: dict[Labels, float]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} counter")
            out.extend(f"{name}{_labels(names, k)} {_num(v)}" for k, v in sorted(table.items()))

        counter(
            "greenlang_gateway_requests_total",
            "Requests answered, by API, route, provider and status.",
            ("api", "route", "provider", "status"),
            self.requests,
        )
        counter(
            "greenlang_gateway_errors_total",
            "Error responses, by API and error type.",
            ("api", "type"),
            self.errors,
        )
        counter(
            "greenlang_gateway_tokens_total",
            "Tokens recorded in the ledger.",
            ("tenant", "provider", "direction"),
            self.tokens,
        )
        counter(
            "greenlang_gateway_cost_usd_total",
            "Cost recorded in the ledger, in US dollars.",
            ("tenant", "provider"),
            self.cost,
        )
        for name, hist, help_ in (
            ("greenlang_gateway_request_duration_seconds", self.latency, "Time from request to last byte."),
            ("greenlang_gateway_stream_ttfb_seconds", self.ttfb, "Time to the first streamed byte."),
        ):
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} histogram")
            out.extend(hist.render(name))
        out.append("# HELP greenlang_gateway_in_flight Requests being served now.")
        out.append("# TYPE greenlang_gateway_in_flight gauge")
        out.append(f"greenlang_gateway_in_flight {self.in_flight}")
        out.append(
            "# HELP greenlang_gateway_circuit_breaker_state Breaker state: 0 closed, 1 half-open, 2 open."
        )
        out.append("# TYPE greenlang_gateway_circuit_breaker_state gauge")
        codes = {"closed": 0, "half_open": 1, "open": 2}
        for route, provider, state in sorted(breakers):
            value = codes.get(state, -1)
            labels = _labels(("route", "provider"), (route, provider))
            out.append(f"greenlang_gateway_circuit_breaker_state{labels} {value}")
        budget_rows = sorted(budgets)
        out.append("# HELP greenlang_gateway_budget_spend_usd Month-to-date spend per tenant with a budget.")
        out.append("# TYPE greenlang_gateway_budget_spend_usd gauge")
        out.extend(
            f"greenlang_gateway_budget_spend_usd{_labels(('tenant',), (t,))} {_num(s)}"
            for t, s, _ in budget_rows
        )
        out.append("# HELP greenlang_gateway_budget_limit_usd Monthly budget per tenant.")
        out.append("# TYPE greenlang_gateway_budget_limit_usd gauge")
        out.extend(
            f"greenlang_gateway_budget_limit_usd{_labels(('tenant',), (t,))} {_num(lim)}"
            for t, _, lim in budget_rows
        )
        out.append("# HELP greenlang_gateway_budget_used_ratio Spend divided by the monthly budget.")
        out.append("# TYPE greenlang_gateway_budget_used_ratio gauge")
        out.extend(
            f"greenlang_gateway_budget_used_ratio{_labels(('tenant',), (t,))} {_num(s / lim if lim else 0.0)}"
            for t, s, lim in budget_rows
        )
        return "\n".join(out) + "\n"
