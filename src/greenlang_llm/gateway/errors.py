"""Every failure as the caller's own API error: status, JSON shape, retry-after.

A client of the gateway is an OpenAI or Anthropic SDK; it branches on status,
``type`` and ``code``, so each of our exceptions maps to what the real API
would have answered in the same situation. Two choices deserve a word:

- An upstream 401/403 means *our* provider key is wrong, not the caller's: it is
  a 502, because telling an SDK "authentication failed" would make its user
  rotate a key that is fine.
- After failover the status reflects the *kind* of failure: all upstreams rate
  limited → 429; overloaded or breakers open → 503 (529 ``overloaded_error`` for
  Anthropic callers, which their SDK retries); timeouts → 504; else 502. A
  ``retry-after`` goes out whenever some component knew one.

Messages are built from our own exception messages, which never contain keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson
from starlette.responses import Response

from .._errors import (
    AllProvidersFailedError,
    AuthenticationError,
    BudgetExceededError,
    CircuitBreakerOpenError,
    ContextWindowExceededError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServiceUnavailableError,
)
from ..wire import anthropic as wire_anthropic
from ..wire import openai as wire_openai
from ..wire._common import RequestFieldError

__all__ = ["ANTHROPIC", "OPENAI", "ApiError", "classify", "error_response", "stream_error_frame"]

OPENAI = "openai"
ANTHROPIC = "anthropic"


@dataclass(slots=True)
class ApiError:
    """One error answer, API-neutral until rendered."""

    status: int
    message: str
    openai_type: str = "invalid_request_error"
    openai_code: str | None = None
    anthropic_type: str | None = None
    param: str | None = None
    retry_after: float | None = None
    kind: str = "invalid_request"
    """Short label for the ``errors_total`` metric."""


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, kind="invalid_request")


def unauthorized(message: str = "invalid API key") -> ApiError:
    return ApiError(
        401,
        message,
        "invalid_request_error",
        "invalid_api_key",
        "authentication_error",
        kind="authentication",
    )


def forbidden(message: str) -> ApiError:
    return ApiError(403, message, "permission_error", "forbidden", "permission_error", kind="permission")


def model_not_found(model: str) -> ApiError:
    return ApiError(
        404,
        f"The model '{model}' does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
        "not_found_error",
        param="model",
        kind="model_not_found",
    )


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"Request body too large: the limit is {limit} bytes.",
        "invalid_request_error",
        "request_too_large",
        "request_too_large",
        kind="too_large",
    )


def body_timeout(seconds: float) -> ApiError:
    return ApiError(
        408,
        f"Request body not received within {seconds:g} s.",
        "invalid_request_error",
        "request_timeout",
        "invalid_request_error",
        kind="request_timeout",
    )


def rate_limited(message: str, retry_after: float | None) -> ApiError:
    return ApiError(
        429,
        message,
        "rate_limit_error",
        "rate_limit_exceeded",
        "rate_limit_error",
        retry_after=retry_after,
        kind="rate_limit",
    )


def _upstream(exc: BaseException, retry_after: float | None = None) -> ApiError:
    """One upstream failure, after failover."""
    if isinstance(exc, BudgetExceededError):
        return ApiError(
            429,
            exc.message,
            "insufficient_quota",
            "budget_exceeded",
            "rate_limit_error",
            kind="budget_exceeded",
        )
    if isinstance(exc, RateLimitError):
        return rate_limited(f"Upstream rate limit: {exc.message}", exc.retry_after or retry_after)
    if isinstance(exc, NotFoundError):
        return ApiError(
            404,
            exc.message,
            "invalid_request_error",
            "model_not_found",
            "not_found_error",
            kind="upstream_not_found",
        )
    if isinstance(exc, ContextWindowExceededError):
        return ApiError(
            400, exc.message, "invalid_request_error", "context_length_exceeded", kind="context_window"
        )
    if isinstance(exc, RequestFieldError):
        return ApiError(400, exc.message, openai_code=exc.code, param=exc.param, kind="invalid_request")
    if isinstance(exc, InvalidRequestError):
        return ApiError(400, exc.message, kind="invalid_request")
    if isinstance(exc, AuthenticationError):
        return ApiError(
            502,
            "The gateway's credentials for the upstream provider are missing or were rejected.",
            "api_error",
            "upstream_auth",
            "api_error",
            kind="upstream_auth",
        )
    if isinstance(exc, CircuitBreakerOpenError):
        return ApiError(
            503,
            "All providers for this model are temporarily unavailable (circuit open).",
            "server_error",
            "service_unavailable",
            "overloaded_error",
            retry_after=exc.retry_after or retry_after,
            kind="circuit_open",
        )
    if isinstance(exc, ProviderTimeoutError):
        return ApiError(
            504,
            "Upstream provider timed out.",
            "timeout",
            "timeout",
            "timeout_error",
            retry_after=retry_after,
            kind="timeout",
        )
    if isinstance(exc, ServiceUnavailableError):
        overloaded = exc.status_code in (503, 529)
        return ApiError(
            503 if overloaded else 502,
            f"Upstream provider failed: {exc.message}",
            "server_error",
            "service_unavailable" if overloaded else "bad_gateway",
            "overloaded_error" if overloaded else "api_error",
            retry_after=retry_after,
            kind="overloaded" if overloaded else "upstream_error",
        )
    if isinstance(exc, ProviderError):
        return ApiError(
            502,
            f"Upstream provider failed: {exc.message}",
            "server_error",
            "bad_gateway",
            "api_error",
            retry_after=retry_after,
            kind="upstream_error",
        )
    return ApiError(500, "Internal gateway error.", "server_error", None, "api_error", kind="internal")


def classify(exc: BaseException) -> ApiError:
    """Map any exception from the request path to the error the caller sees."""
    if isinstance(exc, AllProvidersFailedError):
        errors = [e for _, e in exc.errors]
        retry = exc.retry_after
        if not errors:
            return _upstream(CircuitBreakerOpenError(retry_after=retry or 0.0), retry)
        if all(isinstance(e, CircuitBreakerOpenError) for e in errors):
            return _upstream(errors[0], retry)
        if all(isinstance(e, RateLimitError) for e in errors):
            waits = [e.retry_after for e in errors if isinstance(e, RateLimitError) and e.retry_after]
            return _upstream(errors[-1], min(waits) if waits else retry)
        # A client error anywhere means the request itself is bad: report it, not an outage.
        for err in errors:
            if isinstance(err, InvalidRequestError):
                return _upstream(err)
        return _upstream(errors[-1], retry)
    return _upstream(exc)


def _retry_header(seconds: float | None) -> list[tuple[str, str]]:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return []
    return [("retry-after", str(max(1, math.ceil(seconds))))]


def error_body(api: str, err: ApiError, request_id: str | None = None) -> bytes:
    if api == ANTHROPIC:
        body = wire_anthropic.error_body(err.status, err.message, err.anthropic_type, request_id)
    else:
        body = wire_openai.error_body(err.status, err.message, err.openai_type, err.openai_code, err.param)
    return orjson.dumps(body)


def error_response(
    api: str, err: ApiError, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    extra = dict(headers or {})
    extra["x-request-id"] = request_id
    if api == ANTHROPIC:
        extra["request-id"] = request_id
    extra.update(_retry_header(err.retry_after))
    status = err.status
    if api == ANTHROPIC and err.anthropic_type == "overloaded_error":
        status = 529  # Anthropic's own "overloaded": its SDK retries it
    return Response(error_body(api, err, request_id), status, extra, media_type="application/json")


def stream_error_frame(api: str, err: ApiError) -> bytes:
    """The in-stream error event that ends a stream which already started (never a clean end)."""
    if api == ANTHROPIC:
        return wire_anthropic.StreamWriter.error(err.status, err.message, err.anthropic_type)
    return wire_openai.StreamWriter.error(err.status, err.message, err.openai_type)
