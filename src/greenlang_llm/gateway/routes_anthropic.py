"""``POST /v1/messages`` in the Anthropic shape, whichever provider answers.

Only the translation lives here; the request path is
``handler.handle_completion``. The wire module's maps turn an OpenAI answer
into Anthropic terms (``length`` → ``max_tokens``; ``input_tokens`` excludes
the cache tokens, which travel in their own fields). ``message_start`` needs an
input count before the upstream reports one, so it carries the local count;
the final ``message_delta`` carries the upstream's real, cumulative usage.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from .._types import GenerationRequest, GenerationResponse
from ..providers.base_provider import BaseLLMProvider
from ..wire import anthropic as wire
from ..wire._common import RequestOptions, usage
from .errors import ANTHROPIC
from .handler import Writer, handle_completion

__all__ = ["AnthropicDialect", "messages"]

class AnthropicDialect:
    api = ANTHROPIC

    @staticmethod
    def parse(body: Any) -> tuple[GenerationRequest, RequestOptions]:
        return wire.parse_request(body)

    @staticmethod
    def render(request_id: str, response: GenerationResponse) -> bytes:
        """An Anthropic provider's reply as it came (every field; the gateway's id), else rendered."""
        if response.api == ANTHROPIC and response.raw is not None:
            raw = dict(response.raw)
            raw["id"] = "msg_" + request_id[4:]
            return orjson.dumps(raw)
        return orjson.dumps(
            wire.render_response(
                id="msg_" + request_id[4:],
                model=response.model_id,
                text=response.text,
                finish_reason=response.finish_reason,
                usage=response.usage,
                content=response.content,
                refusal=response.refusal,
            )
        )

    @staticmethod
    def writer(
        request_id: str,
        model: str,
        options: RequestOptions,
        request: GenerationRequest,
        provider: BaseLLMProvider,
    ) -> Writer:
        try:
            input_tokens = provider.count_tokens(request)
        except Exception:
            input_tokens = 0
        return wire.StreamWriter("msg_" + request_id[4:], model, usage(input_tokens, 0))


DIALECT = AnthropicDialect()


async def messages(request: Request) -> Any:
    return await handle_completion(request, DIALECT)
