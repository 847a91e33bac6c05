"""The one exception tree of greenlang-llm, and the classifier that builds it.

Catch the root to handle every failure; catch a leaf to handle one kind::

    ProviderError                      (message, retryable, provider, status_code)
     ├── RateLimitError                429; .retry_after seconds (None if unknown)
     ├── AuthenticationError           401/403, or a missing API key
     ├── InvalidRequestError           400/404/413/422; bad input caught locally
     │    ├── NotFoundError            404: unknown model or route
     │    ├── ContextWindowExceededError  the prompt does not fit the model
     │    └── ContentPolicyError       a safety refusal: a decision, not an outage
     ├── ServiceUnavailableError       5xx, 529 overloaded, 408/409
     │    ├── ProviderTimeoutError     no (complete) answer within the timeout
     │    ├── ProviderConnectionError  connection refused or reset
     │    └── StreamInterruptedError   a stream cut or errored after it began
     ├── CircuitBreakerOpenError       the breaker refused without calling; .retry_after
     ├── BudgetExceededError           a hard budget refused the reservation
     └── AllProvidersFailedError       the router ran out of candidates; .errors
          ├── AllCircuitsOpenError     every breaker was open: no upstream call (also a
          │                            CircuitBreakerOpenError)
          └── AllProvidersRateLimitedError  every attempt was rate-limited (also a
                                       RateLimitError)

``retryable`` says whether sending the *same* request again may succeed; every
class sets its own default so ``AuthenticationError("bad key")`` just works.
Messages never contain API keys: callers build them from status and body only.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

__all__ = [
    "AllCircuitsOpenError",
    "AllProvidersFailedError",
    "AllProvidersRateLimitedError",
    "AuthenticationError",
    "BudgetExceededError",
    "CircuitBreakerOpenError",
    "ContentPolicyError",
    "ContextWindowExceededError",
    "InvalidRequestError",
    "NotFoundError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ServiceUnavailableError",
    "StreamInterruptedError",
    "UnsupportedParamsError",
    "error_from_http",
    "parse_retry_after",
]


class ProviderError(Exception):
    """Root of every error raised by providers, the router and budgets."""

    default_retryable: bool = True

    def __init__(
        self,
        message: str,
        retryable: bool | None = None,
        provider: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = self.default_retryable if retryable is None else retryable
        self.provider = provider
        self.status_code = status_code

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, retryable={self.retryable}, "
            f"provider={self.provider!r}, status_code={self.status_code})"
        )


class RateLimitError(ProviderError):
    """The provider (or a local limit) asked us to slow down."""

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        retryable: bool | None = None,
        provider: str | None = None,
        status_code: int | None = 429,
    ) -> None:
        super().__init__(message, retryable, provider, status_code)
        self.retry_after = retry_after


class AuthenticationError(ProviderError):
    """The key is missing, wrong or not allowed (401/403); a new key is needed, not a retry."""

    default_retryable = False


class InvalidRequestError(ProviderError, ValueError):
    """The request itself is wrong; sending it again (anywhere) will not help."""

    default_retryable = False


class NotFoundError(InvalidRequestError):
    """404: the model or route does not exist here (another provider may still have it)."""


class ContextWindowExceededError(InvalidRequestError):
    """Too long for this model; a model with a larger window may still take it."""


class UnsupportedParamsError(InvalidRequestError):
    """No provider that may answer can honour a field of the request (tools for a provider
    without them, ``logprobs`` for Claude, a hint under ``drop_params=False``...): a 400 that
    names the fields and the providers. ``fields`` are the request's own names for them."""

    def __init__(
        self, message: str, fields: tuple[str, ...] = (), provider: str | None = None
    ) -> None:
        super().__init__(message, retryable=False, provider=provider, status_code=400)
        self.fields = fields


class ContentPolicyError(InvalidRequestError):
    """A safety refusal: the provider decided, so retrying the same request will not help."""


class ServiceUnavailableError(ProviderError):
    """The provider failed or is overloaded (5xx, 529, 408, 409); trying again may work."""


class ProviderTimeoutError(ServiceUnavailableError):
    """No complete answer within the timeout."""


class ProviderConnectionError(ServiceUnavailableError):
    """The connection was refused, reset or could not be made."""


class StreamInterruptedError(ServiceUnavailableError):
    """A stream failed after it started; the text already delivered is kept.

    ``usage_parts`` lists the upstream calls the stream made before it failed, as
    ``UsagePart`` objects (the router fills it when a cut stream could not be continued
    to its end), so a ledger can book each call's tokens to the provider that produced
    them; empty when nothing is known. (Typed ``list[Any]`` here: ``UsagePart`` lives in
    ``_types``, which imports this module.)
    """

    def __init__(
        self,
        message: str,
        retryable: bool | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        partial_text: str = "",
    ) -> None:
        super().__init__(message, retryable, provider, status_code)
        self.partial_text = partial_text
        self.usage_parts: list[Any] = []


class CircuitBreakerOpenError(ProviderError):
    """The breaker refused the call without contacting the provider; see ``retry_after``."""

    def __init__(
        self,
        message: str | float = "circuit breaker is open",
        retry_after: float | None = None,
        provider: str | None = None,
    ) -> None:
        # ``CircuitBreakerOpenError(2.5)`` (the seed's form) means retry_after=2.5.
        if isinstance(message, int | float) and not isinstance(message, bool) and retry_after is None:
            retry_after = float(message)
            message = f"circuit breaker is open; retry after {retry_after:.1f}s"
        super().__init__(str(message), True, provider, None)
        self.retry_after: float = 0.0 if retry_after is None else float(retry_after)


class BudgetExceededError(ProviderError):
    """A hard budget refused the reservation: the tenant has no money left this period."""

    default_retryable = False

    def __init__(
        self,
        message: str,
        tenant_id: str | None = None,
        limit_usd: float | None = None,
        retryable: bool | None = None,
        provider: str | None = None,
        status_code: int | None = 429,
    ) -> None:
        super().__init__(message, retryable, provider, status_code)
        self.tenant_id = tenant_id
        self.limit_usd = limit_usd


class AllProvidersFailedError(ProviderError):
    """Every attempt failed; ``errors`` holds ``(provider_name, error)`` in order."""

    def __init__(
        self,
        message: str,
        errors: Sequence[tuple[str, BaseException]] = (),
        retry_after: float | None = None,
    ) -> None:
        self.errors: list[tuple[str, BaseException]] = list(errors)
        self.retry_after = retry_after
        retryable = any(getattr(e, "retryable", False) for _, e in self.errors)
        detail = "; ".join(_describe(name, err) for name, err in self.errors)
        super().__init__(f"{message} [{detail}]" if detail else message, retryable)


class AllCircuitsOpenError(AllProvidersFailedError, CircuitBreakerOpenError):  # type: ignore[misc]
    """Every breaker is open: refused without an upstream call. Catchable as either parent.

    (mypy's ``misc``: the two parents declare ``retry_after`` as ``float | None`` and
    ``float``; this class always sets a value or None as ``AllProvidersFailedError`` does.)"""

    def __init__(self, message: str, errors: Sequence[tuple[str, BaseException]] = (),
                 retry_after: float | None = None) -> None:
        AllProvidersFailedError.__init__(self, message, errors, retry_after)
        self.retry_after = retry_after  # the parents' constructors disagree on this slot
        self.retryable = True


class AllProvidersRateLimitedError(AllProvidersFailedError, RateLimitError):
    """Every attempt was rate-limited: ``except RateLimitError`` still catches it."""

    def __init__(self, message: str, errors: Sequence[tuple[str, BaseException]] = (),
                 retry_after: float | None = None) -> None:
        AllProvidersFailedError.__init__(self, message, errors, retry_after)
        self.retry_after = retry_after
        self.status_code = 429


def _describe(name: str, err: BaseException) -> str:
    code = getattr(err, "status_code", None)
    return f"{name}: {type(err).__name__}" + (f" {code}" if code else "")


def parse_retry_after(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, then ``retry-after`` (seconds or HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
            if value >= 0 and value == value:  # rejects NaN
                return value
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
        return value if value >= 0 and value == value else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def _error_fields(body: bytes | str | Mapping[str, Any] | None) -> tuple[str, str, str]:
    """(message, type, code) from an Anthropic or OpenAI error body, tolerant of junk."""
    data: Any = body
    if isinstance(body, bytes | str):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return text.strip()[:500], "", ""
    if not isinstance(data, Mapping):
        return "", "", ""
    err = data.get("error", data)
    if not isinstance(err, Mapping):
        return str(err)[:500], "", ""
    code = err.get("code")
    return (
        str(err.get("message") or "")[:500],
        str(err.get("type") or ""),
        "" if code is None else str(code),
    )


_NO_WAIT_FIXES = {
    "insufficient_quota", "enforced_spend_limit_reached", "billing_hard_limit_reached",
}
_CONTEXT_MARKERS = (
    "context_length_exceeded", "prompt is too long", "context window", "maximum context length",
)
_POLICY_MARKERS = ("content_policy", "content_filter", "safety system", "responsible ai")


def error_from_http(
    status: int,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | Mapping[str, Any] | None = None,
    provider: str | None = None,
    now: Callable[[], float] = time.time,
) -> ProviderError:
    """Turn an upstream error answer into the matching exception.

    408/409/429/5xx/529 are retryable; 400/401/403/404/413/422 are not. An
    ``x-should-retry`` header, when present, overrides the status rule, as the
    official SDKs do.
    """
    headers = headers or {}
    message, err_type, code = _error_fields(body)
    where = f"{provider}: " if provider else ""
    text = f"{where}HTTP {status}" + (f" {err_type or code}" if (err_type or code) else "")
    if message:
        text += f": {message}"
    lowered = {k.lower(): v for k, v in headers.items()}
    should_retry = lowered.get("x-should-retry")
    override = None if should_retry is None else should_retry.strip().lower() == "true"

    error: ProviderError
    if status == 429:
        no_wait = code in _NO_WAIT_FIXES or err_type in _NO_WAIT_FIXES
        error = RateLimitError(
            text, retry_after=parse_retry_after(headers, now), retryable=not no_wait,
            provider=provider, status_code=status,
        )
    elif status in (401, 403):
        error = AuthenticationError(text, provider=provider, status_code=status)
    elif status == 404:
        error = NotFoundError(text, provider=provider, status_code=status)
    elif status in (400, 413, 422) or (400 <= status < 500 and status not in (408, 409)):
        probe = f"{code} {err_type} {message}".lower()
        cls: type[InvalidRequestError] = InvalidRequestError
        if any(m in probe for m in _CONTEXT_MARKERS):
            cls = ContextWindowExceededError
        elif any(m in probe for m in _POLICY_MARKERS):
            cls = ContentPolicyError
        error = cls(text, provider=provider, status_code=status)
    else:  # 408, 409, 5xx, 529 and anything unexpected
        error = ServiceUnavailableError(text, provider=provider, status_code=status)
    if override is not None:
        error.retryable = override
    return error
