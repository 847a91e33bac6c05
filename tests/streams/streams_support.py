"""Helpers for the stream-guarantee tests: the simulator's models, 20 request shapes, SSE parsing.

Imported as ``streams_support`` (conftest.py puts this directory on ``sys.path``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from greenlang_llm._types import GenerationRequest, StreamChunk
from greenlang_llm.providers.anthropic_provider import AnthropicProvider
from greenlang_llm.providers.base_provider import BaseLLMProvider
from greenlang_llm.providers.openai_provider import OpenAIProvider
from greenlang_llm.simulator.config import ModelBehaviour, SimulatorConfig
from greenlang_llm.simulator.server import Simulator

SIM_KEY = "sk-test-canary-streams"

CLAUDE = "claude-3-5-haiku-20241022"
CLAUDE_CACHED = "claude-sonnet-4-5"
"""Answers with a cached prompt prefix: cache reads and writes in every usage."""
GPT = "gpt-4o-mini"
GPT_CACHED = "gpt-4o"

MODELS = {
    CLAUDE: ModelBehaviour(reply_tokens=16),
    CLAUDE_CACHED: ModelBehaviour(reply_tokens=24, cache_read_tokens=2048, cache_write_tokens=512),
    GPT: ModelBehaviour(reply_tokens=16),
    GPT_CACHED: ModelBehaviour(reply_tokens=24, cache_read_tokens=1024, cache_write_tokens=256),
}


def sim_config(**behaviour: Any) -> SimulatorConfig:
    """The simulator the stream tests run on; ``behaviour`` overrides every model (e.g. token_ms)."""
    models = {name: ModelBehaviour.from_dict(behaviour, b) for name, b in MODELS.items()}
    return SimulatorConfig(seed=13, models=models)


@contextlib.asynccontextmanager
async def running_sim(**behaviour: Any) -> AsyncIterator[Simulator]:
    async with Simulator(sim_config(**behaviour)) as sim:
        yield sim


def provider_for(sim: Simulator, model: str, **kw: Any) -> BaseLLMProvider:
    """A real provider of the model's API on the simulator (no retries unless asked)."""
    kw.setdefault("max_retries", 0)
    if model.startswith("claude"):
        return AnthropicProvider(model, api_key=SIM_KEY, base_url=sim.anthropic_base_url, **kw)
    return OpenAIProvider(model, api_key=SIM_KEY, base_url=sim.openai_base_url, **kw)


@dataclass(frozen=True)
class Shape:
    """One request shape: a name for the test id and the request for a model."""

    name: str
    build: Callable[[str], tuple[str, GenerationRequest]]


def _shape(name: str, model_kind: str = "plain", **request: Any) -> Shape:
    def build(api: str) -> tuple[str, GenerationRequest]:
        cached = model_kind == "cached"
        model = (CLAUDE_CACHED if cached else CLAUDE) if api == "anthropic" else (GPT_CACHED if cached else GPT)
        return model, GenerationRequest(**request)

    return Shape(name, build)


_TURNS = [
    {"role": "user", "content": "What is a circuit breaker?"},
    {"role": "assistant", "content": "A switch that opens after repeated failures."},
    {"role": "user", "content": "And when does it close again?"},
]

SHAPES: list[Shape] = [
    _shape("hello", prompt="Hello there"),
    _shape("system", prompt="Hello there", system="Be brief."),
    _shape("max_tokens_3_length", prompt="Tell me a long story", max_tokens=3),
    _shape("max_tokens_1", prompt="One word please", max_tokens=1),
    _shape("long_prompt", prompt=" ".join(f"word{i}" for i in range(400))),
    _shape("multi_turn", messages=_TURNS),
    _shape("unicode", prompt="Grüße aus Köln — 東京 🚀, ça va ?"),
    _shape("temperature", prompt="Pick a colour", temperature=0.2),
    _shape("cached_prefix", "cached", prompt="Summarise the cached document"),
    _shape("cached_with_system", "cached", prompt="Summarise it", system="You are a careful analyst."),
    _shape("cached_length", "cached", prompt="Summarise it all", max_tokens=5),
    _shape("cached_multi_turn", "cached", messages=_TURNS),
    _shape("exact_reply_length", prompt="Exactly sixteen", max_tokens=16),
    _shape("long_system", prompt="Go", system="Rules: " + "be precise, " * 60),
    _shape("punctuation", prompt="?!... ;; -- (a) [b] {c} <d> 'e' \"f\""),
    _shape("short", prompt="?"),
    _shape("newlines", prompt="line one\nline two\n\nline four\n"),
    _shape("assistant_last_turn_user", messages=[*_TURNS, {"role": "assistant", "content": "It"},
                                                 {"role": "user", "content": "continue"}]),
    _shape("cached_unicode", "cached", prompt="Résumé: naïve café — ☕"),
    _shape("big_max_tokens", "cached", prompt="Everything", max_tokens=4096),
]
assert len(SHAPES) == 20


async def collect(stream: AsyncIterator[StreamChunk], into: list[str] | None = None) -> list[StreamChunk]:
    chunks = []
    async for chunk in stream:
        chunks.append(chunk)
        if into is not None and chunk.text:
            into.append(chunk.text)
    return chunks


def sse_events(raw: bytes) -> list[tuple[str | None, Any]]:
    """(event name, decoded data) of each SSE event; ``[DONE]`` stays a string."""
    events: list[tuple[str | None, Any]] = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        name: str | None = None
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
        if not data:
            continue
        payload = b"\n".join(data)
        events.append((name, payload.decode() if payload == b"[DONE]" else orjson.loads(payload)))
    return events


@contextlib.asynccontextmanager
async def usage_dropping_proxy(upstream_base: str) -> AsyncIterator[str]:
    """An OpenAI-compatible server that ignores ``stream_options`` (as some do): streams carry no usage.

    Forwards to the simulator with ``stream_options`` removed from the body; yields its ``/v1`` base URL.
    """
    import aiohttp
    from aiohttp import web

    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        body.pop("stream_options", None)
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with session.post(upstream_base + request.path[3:], data=orjson.dumps(body),
                                headers=headers) as up:
            out = web.StreamResponse(status=up.status, headers={"content-type": up.headers["content-type"]})
            await out.prepare(request)
            async for piece in up.content.iter_any():
                await out.write(piece)
            await out.write_eof()
            return out

    app = web.Application()
    app.router.add_post("/v1/chat/completions", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()
        await session.close()
