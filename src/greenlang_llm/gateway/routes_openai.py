"""``POST /v1/chat/completions`` in the OpenAI shape, whichever provider answers.

Only the translation lives here (parse, render, stream writer); the request
path is ``handler.handle_completion``. Finish reasons and usage go through the
wire module's maps, so an Anthropic answer reads like an OpenAI one: ``end_turn``
becomes ``stop`` and ``prompt_tokens`` includes the cache tokens.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request

from .._types import GenerationRequest, GenerationResponse
from ..providers.base_provider import BaseLLMProvider
from ..wire import openai as wire
from ..wire._common import RequestFieldError, RequestOptions
from .errors import OPENAI
from .handler import Writer, handle_completion

__all__ = ["OpenAIDialect", "chat_completions"]

class OpenAIDialect:
    api = OPENAI

    @staticmethod
    def parse(body: Any) -> tuple[GenerationRequest, RequestOptions]:
        request, options = wire.parse_request(body)
        if options.stream and request.n is not None and request.n > 1:
            # a stream is relayed from the neutral stream, which carries one answer: say so, never
            # answer n streams with one
            raise RequestFieldError(
                "n > 1 is served without streaming only: send stream=false, or n=1.", "n")
        return request, options

    @staticmethod
    def render(request_id: str, response: GenerationResponse) -> bytes:
        """An OpenAI provider's reply as it came (every field; the gateway's id), else rendered."""
        if response.api == OPENAI and response.raw is not None:
            raw = dict(response.raw)
            raw["id"] = "chatcmpl-" + request_id[4:]
            return orjson.dumps(raw)
        return orjson.dumps(
            wire.render_response(
                id="chatcmpl-" + request_id[4:],
                model=response.model_id,
                text=response.text,
                finish_reason=response.finish_reason,
                usage=response.usage,
                created=int(time.time()),
                content=response.content,
                refusal=response.refusal,
                logprobs=response.logprobs,
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
        return wire.StreamWriter("chatcmpl-" + request_id[4:], model, int(time.time()), options.include_usage)


DIALECT = OpenAIDialect()


async def chat_completions(request: Request) -> Any:
    return await handle_completion(request, DIALECT)
