"""The error tree and the HTTP classifier: statuses, retry overrides, retry-after forms, real bodies."""

from __future__ import annotations

import email.utils
from pathlib import Path

import pytest

from greenlang_llm import (
    AllProvidersFailedError,
    AuthenticationError,
    BudgetExceededError,
    CircuitBreakerOpenError,
    ContentPolicyError,
    ContextWindowExceededError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    RateLimitError,
    ServiceUnavailableError,
    StreamInterruptedError,
)
from greenlang_llm._errors import error_from_http, parse_retry_after

FIXTURES = Path(__file__).parent / "wire" / "fixtures"
NOW = 1_794_924_192.0  # Tue, 17 Nov 2026 14:03:12 GMT, the fixtures' date


def read_http(path: Path) -> tuple[int, dict[str, str], bytes]:
    head, _, body = path.read_bytes().partition(b"\n\n")
    status_line, *header_lines = head.decode().split("\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, InvalidRequestError, False),
        (401, AuthenticationError, False),
        (403, AuthenticationError, False),
        (404, NotFoundError, False),
        (408, ServiceUnavailableError, True),
        (409, ServiceUnavailableError, True),
        (413, InvalidRequestError, False),
        (422, InvalidRequestError, False),
        (429, RateLimitError, True),
        (500, ServiceUnavailableError, True),
        (502, ServiceUnavailableError, True),
        (503, ServiceUnavailableError, True),
        (504, ServiceUnavailableError, True),
        (529, ServiceUnavailableError, True),
    ],
)
def test_status_classification_table(status: int, cls: type[ProviderError], retryable: bool) -> None:
    error = error_from_http(status, {}, b"", provider="p")
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.status_code == status
    assert error.provider == "p"
    assert str(status) in str(error)


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422])
def test_x_should_retry_true_overrides_a_client_error(status: int) -> None:
    assert error_from_http(status, {"x-should-retry": "true"}).retryable is True


@pytest.mark.parametrize("status", [408, 409, 429, 500, 503, 529])
def test_x_should_retry_false_overrides_a_retryable_status(status: int) -> None:
    assert error_from_http(status, {"X-Should-Retry": "false"}).retryable is False


def test_retry_after_seconds() -> None:
    error = error_from_http(429, {"retry-after": "11"})
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 11.0


def test_retry_after_fractional_seconds() -> None:
    assert parse_retry_after({"Retry-After": "1.5"}) == 1.5


def test_retry_after_http_date() -> None:
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=lambda: NOW) == pytest.approx(30.0)
    error = error_from_http(429, {"retry-after": date}, now=lambda: NOW)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == pytest.approx(30.0)


def test_retry_after_http_date_in_the_past_means_now() -> None:
    date = email.utils.formatdate(NOW - 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=lambda: NOW) == 0.0


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert parse_retry_after({"retry-after": "1", "retry-after-ms": "372"}) == pytest.approx(0.372)


@pytest.mark.parametrize(
    "headers",
    [{}, {"retry-after": "soon"}, {"retry-after": "-3"}, {"retry-after": "nan"}, {"retry-after-ms": "x"}],
)
def test_unusable_retry_after_is_none(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers) is None


def test_bad_retry_after_ms_falls_back_to_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "junk", "retry-after": "2"}) == 2.0


def test_anthropic_429_fixture() -> None:
    status, headers, body = read_http(FIXTURES / "anthropic" / "error_429.http")
    error = error_from_http(status, headers, body, provider="anthropic")
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 11.0
    assert error.retryable
    assert "rate_limit_error" in str(error)


def test_openai_429_fixture_uses_retry_after_ms() -> None:
    status, headers, body = read_http(FIXTURES / "openai" / "error_429.http")
    error = error_from_http(status, headers, body, provider="openai")
    assert isinstance(error, RateLimitError)
    assert error.retry_after == pytest.approx(0.372)
    assert "rate_limit_exceeded" in str(error) or "tokens" in str(error)


@pytest.mark.parametrize(
    ("path", "status", "cls", "retryable"),
    [
        ("anthropic/error_400.json", 400, ContextWindowExceededError, False),
        ("anthropic/error_401.json", 401, AuthenticationError, False),
        ("anthropic/error_529_overloaded.json", 529, ServiceUnavailableError, True),
        ("openai/error_400.json", 400, InvalidRequestError, False),
        ("openai/error_401.json", 401, AuthenticationError, False),
        ("openai/error_404_model.json", 404, NotFoundError, False),
        ("openai/error_500.json", 500, ServiceUnavailableError, True),
    ],
)
def test_fixture_error_bodies(path: str, status: int, cls: type[ProviderError], retryable: bool) -> None:
    error = error_from_http(status, {}, (FIXTURES / path).read_bytes())
    assert type(error) is cls
    assert error.retryable is retryable


def test_message_and_type_come_from_the_body() -> None:
    body = (FIXTURES / "anthropic" / "error_529_overloaded.json").read_bytes()
    error = error_from_http(529, {}, body, "claude")
    assert "overloaded_error" in str(error)
    assert "Overloaded" in str(error)
    assert str(error).startswith("claude: HTTP 529")


def test_openai_context_length_code_is_a_context_window_error() -> None:
    body = {"error": {"message": "This model's maximum context length is 8192 tokens.",
                      "type": "invalid_request_error", "code": "context_length_exceeded"}}
    assert isinstance(error_from_http(400, {}, body), ContextWindowExceededError)


def test_content_filter_is_a_content_policy_error() -> None:
    body = {"error": {"message": "flagged", "type": "invalid_request_error", "code": "content_filter"}}
    assert isinstance(error_from_http(400, {}, body), ContentPolicyError)


@pytest.mark.parametrize("code", ["insufficient_quota", "enforced_spend_limit_reached"])
def test_quota_429s_are_not_retryable(code: str) -> None:
    error = error_from_http(429, {}, {"error": {"type": "x", "code": code, "message": "no money"}})
    assert isinstance(error, RateLimitError)
    assert not error.retryable


@pytest.mark.parametrize(
    "body", [b"<html>bad gateway</html>", b"", None, "plain text", b"[1, 2]", b"\xff\xfe"]
)
def test_junk_bodies_never_crash_the_classifier(body: bytes | str | None) -> None:
    error = error_from_http(502, {}, body)
    assert isinstance(error, ServiceUnavailableError)


def test_subclass_defaults_make_simple_construction_work() -> None:
    assert not AuthenticationError("bad key").retryable
    assert RateLimitError("slow down", retry_after=2.5).retry_after == 2.5
    assert RateLimitError("slow down").retryable
    assert ServiceUnavailableError("down").retryable
    assert not InvalidRequestError("bad").retryable
    assert isinstance(InvalidRequestError("bad"), ValueError)
    assert ProviderError("x").retryable
    assert ProviderError("x", retryable=False).retryable is False
    assert not BudgetExceededError("over", tenant_id="acme", limit_usd=10.0).retryable
    assert CircuitBreakerOpenError(retry_after=3.0).retry_after == 3.0
    assert StreamInterruptedError("cut", partial_text="Hel").partial_text == "Hel"


def test_all_providers_failed_keeps_every_attempt_and_is_retryable_if_any_was() -> None:
    errors = [("a", AuthenticationError("bad key", status_code=401)), ("b", ServiceUnavailableError("down"))]
    failed = AllProvidersFailedError("all failed", errors, retry_after=5.0)
    assert failed.errors == errors
    assert failed.retryable
    assert failed.retry_after == 5.0
    assert "a: AuthenticationError 401" in str(failed)
    assert not AllProvidersFailedError("x", [("a", AuthenticationError("k"))]).retryable


def test_error_tree_shape() -> None:
    for leaf in (NotFoundError, ContextWindowExceededError, ContentPolicyError):
        assert issubclass(leaf, InvalidRequestError)
    for cls in (RateLimitError, AuthenticationError, InvalidRequestError, ServiceUnavailableError,
                CircuitBreakerOpenError, BudgetExceededError, AllProvidersFailedError):
        assert issubclass(cls, ProviderError)


def test_repr_names_the_fields() -> None:
    text = repr(RateLimitError("slow", retry_after=1.0, provider="openai"))
    assert "RateLimitError" in text
    assert "provider='openai'" in text


def test_circuit_breaker_open_error_takes_retry_after_positionally_as_the_seed_did() -> None:
    from greenlang_llm.circuit_breaker import CircuitBreakerOpenError

    err = CircuitBreakerOpenError(2.5)
    assert err.retry_after == 2.5
    assert "2.5" in str(err)
    named = CircuitBreakerOpenError("open", retry_after=1.0, provider="claude")
    assert (named.retry_after, named.provider, str(named)) == (1.0, "claude", "open")
    assert CircuitBreakerOpenError().retry_after == 0.0
