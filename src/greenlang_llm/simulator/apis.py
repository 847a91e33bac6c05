"""What differs between the two APIs the simulator plays: parsing, error shapes, fault answers.

Everything wire-shaped comes from ``greenlang_llm.wire``; this module only
chooses statuses, messages and headers the way each real API does (fixture
README rules 4, 5, 17): Anthropic answers 529 when overloaded and puts the id
in ``request-id``; OpenAI-style servers answer 503, put it in
``x-request-id`` and add ``retry-after-ms`` to a 429.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from .._types import GenerationRequest
from ..wire import anthropic as wa
from ..wire import openai as wo
from ..wire._common import RequestOptions
from .faults import FaultRule

__all__ = ["ANTHROPIC", "OPENAI", "Api", "json_response"]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


@dataclass(frozen=True, slots=True)
class _FaultAnswer:
    status: int
    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None


@dataclass(frozen=True, slots=True)
class Api:
    name: str
    request_id_header: str
    parse: Callable[[Any], tuple[GenerationRequest, RequestOptions]]
    answers: dict[str, _FaultAnswer]

    def error(
        self,
        status: int,
        message: str,
        request_id: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if self.name == "anthropic":
            body = wa.error_body(status, message, type, request_id)
        else:
            body = wo.error_body(status, message, type, code, param)
        all_headers = {self.request_id_header: request_id}
        if headers:
            all_headers.update(headers)
        return json_response(body, status, all_headers)

    def fault(self, rule: FaultRule, request_id: str, model: str, input_tokens: int, window: int) -> Response:
        """The error answer for an answer-kind fault (not slow/reset/stream kinds)."""
        if rule.kind == "rate_limit":
            headers = {"retry-after": str(math.ceil(rule.retry_after))}
            if self.name == "openai":
                headers["retry-after-ms"] = str(round(rule.retry_after * 1000))
            answer = self.answers["rate_limit"]
            return self.error(429, rule.message or answer.message, request_id,
                              type=answer.type, code=answer.code, headers=headers)
        answer = self.answers[rule.kind]
        message = rule.message or answer.message.format(model=model, tokens=input_tokens, window=window)
        return self.error(answer.status, message, request_id, type=answer.type, code=answer.code,
                          param=answer.param)


_CONTEXT_A = "prompt is too long: {tokens} tokens > {window} maximum"
_CONTEXT_O = (
    "This model's maximum context length is {window} tokens. However, your messages resulted in "
    "{tokens} tokens. Please reduce the length of the messages."
)

ANTHROPIC = Api(
    name="anthropic",
    request_id_header="request-id",
    parse=wa.parse_request,
    answers={
        "http_500": _FaultAnswer(500, "Internal server error"),
        "http_503": _FaultAnswer(503, "Service unavailable", "api_error"),
        "down": _FaultAnswer(503, "Service unavailable (simulated outage)", "api_error"),
        "overloaded": _FaultAnswer(529, "Overloaded"),
        "rate_limit": _FaultAnswer(429, "This request would exceed the rate limit for your organization"),
        "auth": _FaultAnswer(401, "invalid x-api-key"),
        "bad_request": _FaultAnswer(400, "simulated invalid request"),
        "context_length": _FaultAnswer(400, _CONTEXT_A),
        "content_policy": _FaultAnswer(
            400, "Output blocked by content_policy: the request was rejected by the safety system"
        ),
        "not_found": _FaultAnswer(404, "model: {model}"),
        "prefill": _FaultAnswer(
            400, "This model does not support assistant message prefill. "
            "The conversation must end with a user message."
        ),
    },
)

OPENAI = Api(
    name="openai",
    request_id_header="x-request-id",
    parse=wo.parse_request,
    answers={
        "http_500": _FaultAnswer(500, "The server had an error processing your request. Sorry about that!"),
        "http_503": _FaultAnswer(503, "Service Unavailable"),
        "down": _FaultAnswer(503, "Service Unavailable (simulated outage)"),
        "overloaded": _FaultAnswer(503, "The engine is currently overloaded, please try again later."),
        "rate_limit": _FaultAnswer(429, "Rate limit reached for requests. Please try again later.",
                                   "requests", "rate_limit_exceeded"),
        "auth": _FaultAnswer(401, "Incorrect API key provided.", code="invalid_api_key"),
        "bad_request": _FaultAnswer(400, "simulated invalid request"),
        "context_length": _FaultAnswer(400, _CONTEXT_O, code="context_length_exceeded", param="messages"),
        "content_policy": _FaultAnswer(
            400, "Your request was rejected as a result of our safety system.",
            code="content_policy_violation",
        ),
        "not_found": _FaultAnswer(
            404, "The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
        ),
        "prefill": _FaultAnswer(
            400, "Assistant message prefill is not supported: the last message must be from the user.",
            param="messages",
        ),
    },
)
