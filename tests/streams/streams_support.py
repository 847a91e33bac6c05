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
        claude, gpt = (CLAUDE_CACHED, GPT_CACHED) if cached else (CLAUDE, GPT)
        model = claude if api == "anthropic" else gpt
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
    _shape(
        "assistant_last_turn_user",
        messages=[*_TURNS, {"role": "assistant", "content": "It"}, {"role": "user", "content": "continue"}],
    ),
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
        async with session.post(
            upstream_base + request.path[3:], data=orjson.dumps(body), headers=headers
        ) as up:
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


# --- the gateway in front of the simulator --------------------------------------------------------------

ACME_KEY = "sk-gl-acme-streams-0123"
GATEWAY_ENV = {"ACME_KEY": ACME_KEY, "SIM_KEY": SIM_KEY, "GREENLANG_ADMIN_KEY": "sk-gl-admin-streams-0123"}
PROVIDER_NAMES = {CLAUDE: "claude", CLAUDE_CACHED: "claude_cached", GPT: "gpt", GPT_CACHED: "gpt_cached"}


def gateway_config(
    sim: Simulator,
    extra_providers: list[dict[str, Any]] | None = None,
    provider_changes: dict[str, Any] | None = None,
    routes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One provider per simulator model (model-id targets: one provider, nothing to fail over to),
    plus ``routes``; ``provider_changes`` apply to every provider (e.g. ``idle_timeout``)."""
    providers = []
    for model, name in PROVIDER_NAMES.items():
        api = "anthropic" if model.startswith("claude") else "openai"
        base = sim.anthropic_base_url if api == "anthropic" else sim.openai_base_url
        providers.append(
            {
                "name": name,
                "type": api,
                "model_id": model,
                "base_url": base,
                "api_key_env": "SIM_KEY",
                "max_retries": 0,
                **(provider_changes or {}),
            }
        )
    return {
        "server": {"database_url": "sqlite:///:memory:"},
        "providers": providers + list(extra_providers or []),
        "routes": list(routes or []),
        "keys": [{"key_env": "ACME_KEY", "tenant": "acme", "agent": "streams"}],
        "budgets": [{"tenant": "acme", "monthly_limit_usd": 1000.0, "hard_limit": True}],
    }


@dataclass
class Stack:
    sim: Simulator
    service: Any
    url: str


@contextlib.asynccontextmanager
async def gateway_stack(sim: Simulator, **config: Any) -> AsyncIterator[Stack]:
    """The gateway (real providers, in-memory SQLite ledger) on a loopback port in front of ``sim``."""
    from gateway_support import make_app, serve

    app, service = make_app(gateway_config(sim, **config), providers={}, env=GATEWAY_ENV)
    async with serve(app) as url:
        yield Stack(sim, service, url)


def anthropic_body(model: str, request: GenerationRequest, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "stream": stream,
        "messages": request.to_messages(),
    }
    if request.system:
        body["system"] = request.system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return body


def openai_body(
    model: str, request: GenerationRequest, stream: bool, include_usage: bool = True
) -> dict[str, Any]:
    system = [{"role": "system", "content": request.system}] if request.system else []
    messages = system + request.to_messages()
    body: dict[str, Any] = {"model": model, "max_completion_tokens": request.max_tokens, "messages": messages}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    return body


def api_request(
    api: str, model: str, request: GenerationRequest, stream: bool, include_usage: bool = True
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(path, headers, body) of a client request to the gateway in ``api``'s shape."""
    headers = {"authorization": f"Bearer {ACME_KEY}"}
    if api == "anthropic":
        headers["anthropic-version"] = "2023-06-01"
        return "/v1/messages", headers, anthropic_body(model, request, stream)
    return "/v1/chat/completions", headers, openai_body(model, request, stream, include_usage)


def ledger_rows(service: Any) -> dict[str, Any]:
    """request_id -> ledger record, once every queued write has landed."""
    rows = {r.request_id: r for r in service.tracker.ledger.iter_records(0, 2**62)}
    return rows


def stream_text(api: str, events: list[tuple[str | None, Any]]) -> str:
    if api == "anthropic":
        return "".join(d["delta"].get("text", "") for n, d in events if n == "content_block_delta")
    return "".join(
        (d["choices"][0]["delta"].get("content") or "")
        for _, d in events
        if isinstance(d, dict) and d.get("choices")
    )


async def streams_when_settled(sim: Simulator, limit_s: float = 5.0) -> dict[str, int]:
    """The simulator's stream stats once no stream is open (it notices a closed connection on its own
    schedule), or as they are after ``limit_s``."""
    import asyncio

    for _ in range(int(limit_s / 0.01)):
        streams: dict[str, int] = sim.stats.snapshot()["streams"]
        if streams["open"] == 0:
            return streams
        await asyncio.sleep(0.01)
    return dict(sim.stats.snapshot()["streams"])
