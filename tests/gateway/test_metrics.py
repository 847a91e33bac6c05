"""Prometheus exposition: counters, cumulative histogram buckets, escaping, external gauges."""

from __future__ import annotations

from greenlang_llm.gateway.metrics import Histogram, Metrics, escape_label


def test_histogram_buckets_are_cumulative_and_overflow_only_counts_in_inf() -> None:
    hist = Histogram(("api",), buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 5.0):
        hist.observe(("openai",), value)
    lines = list(hist.render("lat"))
    assert 'lat_bucket{api="openai",le="0.1"} 1' in lines
    assert 'lat_bucket{api="openai",le="1"} 2' in lines
    assert 'lat_bucket{api="openai",le="+Inf"} 3' in lines
    assert 'lat_count{api="openai"} 3' in lines
    assert 'lat_sum{api="openai"} 5.55' in lines


def test_render_includes_requests_errors_usage_breakers_and_budgets() -> None:
    m = Metrics()
    m.record_request("openai", "default", "claude", 200)
    m.record_request("openai", "default", "claude", 200)
    m.record_error("anthropic", "budget_exceeded")
    m.record_usage("acme", "claude", 10, 5, 0.25)
    text = m.render(breakers=[("default", "claude", "open")], budgets=[("acme", 2.5, 10.0)])
    assert (
        'greenlang_gateway_requests_total{api="openai",route="default",provider="claude",status="200"} 2'
        in text
    )
    assert 'greenlang_gateway_errors_total{api="anthropic",type="budget_exceeded"} 1' in text
    assert 'greenlang_gateway_tokens_total{tenant="acme",provider="claude",direction="input"} 10' in text
    assert 'greenlang_gateway_cost_usd_total{tenant="acme",provider="claude"} 0.25' in text
    assert 'greenlang_gateway_circuit_breaker_state{route="default",provider="claude"} 2' in text
    assert 'greenlang_gateway_budget_used_ratio{tenant="acme"} 0.25' in text
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.startswith("#") or " " in line


def test_label_values_are_escaped() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
