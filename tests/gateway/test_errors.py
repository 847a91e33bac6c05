"""Exceptions → the caller's API error: status, type, code and retry-after."""

from __future__ import annotations

import orjson
import pytest

from greenlang_llm._errors import (
    AllProvidersFailedError,
    AuthenticationError,
    BudgetExceededError,
    CircuitBreakerOpenError,
    ProviderTimeoutError,
    RateLimitError,
    ServiceUnavailableError,
)
from greenlang_llm.gateway.errors import ANTHROPIC, OPENAI, classify, error_response, stream_error_frame


def test_all_rate_limited_is_429_with_the_shortest_wait() -> None:
    exc = AllProvidersFailedError(
        "x", [("a", RateLimitError("slow", retry_after=7)), ("b", RateLimitError("slow", retry_after=2.5))]
    )
    err = classify(exc)
    assert (err.status, err.retry_after, err.openai_type) == (429, 2.5, "rate_limit_error")
    response = error_response(OPENAI, err, "req_1")
    assert response.headers["retry-after"] == "3"


def test_overloaded_is_503_for_openai_and_529_for_anthropic() -> None:
    exc = AllProvidersFailedError("x", [("a", ServiceUnavailableError("busy", status_code=529))])
    err = classify(exc)
    assert error_response(OPENAI, err, "r").status_code == 503
    anthropic = error_response(ANTHROPIC, err, "r")
    assert anthropic.status_code == 529
    assert orjson.loads(anthropic.body)["error"]["type"] == "overloaded_error"


def test_breakers_open_is_503_with_retry_after() -> None:
    exc = AllProvidersFailedError("x", [("a", CircuitBreakerOpenError(retry_after=12.2))], retry_after=12.2)
    err = classify(exc)
    assert err.status == 503
    assert err.retry_after == pytest.approx(12.2)


def test_upstream_auth_failure_is_a_502_not_the_callers_401() -> None:
    err = classify(AuthenticationError("bad key sk-should-not-leak", status_code=401))
    assert err.status == 502
    assert "sk-should-not-leak" not in err.message


def test_budget_error_shapes() -> None:
    err = classify(BudgetExceededError("budget of acme exhausted", tenant_id="acme"))
    body = orjson.loads(error_response(OPENAI, err, "r").body)
    assert body["error"]["type"] == "insufficient_quota"
    assert body["error"]["code"] == "budget_exceeded"
    body = orjson.loads(error_response(ANTHROPIC, err, "r").body)
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"


def test_timeouts_are_504_and_generic_failures_502() -> None:
    assert classify(ProviderTimeoutError("slow")).status == 504
    assert classify(ServiceUnavailableError("boom", status_code=500)).status == 502
    assert classify(RuntimeError("bug")).status == 500


def test_stream_error_frames_are_the_apis_own_events() -> None:
    err = classify(ServiceUnavailableError("cut", status_code=500))
    assert stream_error_frame(ANTHROPIC, err).startswith(b"event: error\n")
    frame = stream_error_frame(OPENAI, err)
    assert frame.startswith(b"data: {")
    assert frame.endswith(b"data: [DONE]\n\n")
