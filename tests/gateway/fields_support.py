"""Shared helpers of the field-table tests (tests/gateway/test_fields_*.py).

``ThreadStack``: the simulator, a scripted upstream and the gateway on their own event loop in a
background thread, so one stack serves a whole test module, and both the official SDKs' sync
clients (called straight from the test) and their async clients (on the test's own loop) can
talk to it. Reading what the upstream received is the simulator's request log; reading the
ledger happens on the stack's loop (its SQLite connection lives there).

``call_openai`` / ``call_anthropic``: one request with the official SDK, sync or async, plain
or streamed, returning what the caller got: headers, the raw JSON body (plain), the parsed
SDK object (plain) or the SDK's own accumulated final message (streamed), the stream's
chunks/events and a mid-stream error if one ended it.
"""

from __future__ import annotations

import asyncio
import threading
import types
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anthropic
import httpx2
import openai
import orjson
from gateway_support import ACME_KEY, CLAUDE, GPT, SIM_ENV, make_app, serve, sim_config_dict
from openai.lib.streaming.chat import ChatCompletionStreamState
from starlette.types import Receive, Scope, Send

from greenlang_llm.gateway.service import GatewayService
from greenlang_llm.ledger.base import MAX_US, MIN_US
from greenlang_llm.ledger.records import UsageRecord
from greenlang_llm.simulator.server import Simulator

__all__ = [
    "CLAUDE",
    "FIXED_CLAUDE",
    "FIXED_GPT",
    "GPT",
    "MODES",
    "Capture",
    "Got",
    "ScriptedUpstream",
    "ThreadStack",
    "anthropic_sse",
    "call_anthropic",
    "call_openai",
    "mode_id",
    "openai_sse",
]

T = TypeVar("T")

FIXED_GPT = "gpt-4o"
"""The model of the scripted OpenAI upstream (answers what a test scripts)."""
FIXED_CLAUDE = "claude-3-5-sonnet-20241022"

MODES = [("sync", False), ("sync", True), ("async", False), ("async", True)]
"""(client kind, streamed): every test that checks a row runs through all four."""


def mode_id(value: Any) -> str:
    if isinstance(value, bool):
        return "stream" if value else "plain"
    return str(value)


ROUTES: list[dict[str, Any]] = [
    {"name": "default", "strategy": "priority", "providers": ["claude", "gpt"]},
    {"name": "cheap", "strategy": "priority", "providers": ["gpt"]},
    {"name": "to_claude", "strategy": "priority", "providers": ["claude"]},
    {"name": "to_gpt", "strategy": "priority", "providers": ["gpt"]},
    {"name": "claude_then_gpt", "strategy": "priority", "providers": ["claude", "gpt"]},
    # (the priority strategy orders by each provider's priority: gpt_lead 1 before claude_tail 3)
    {"name": "gpt_then_claude", "strategy": "priority", "providers": ["gpt_lead", "claude_tail"]},
    {"name": "strict_claude", "strategy": "priority", "providers": ["claude"], "drop_params": False},
    {"name": "strict_gpt", "strategy": "priority", "providers": ["gpt"], "drop_params": False},
    {"name": "to_fixed_gpt", "strategy": "priority", "providers": ["fixed_gpt"]},
    {"name": "to_fixed_claude", "strategy": "priority", "providers": ["fixed_claude"]},
]


# ---------------------------------------------------------------- a scripted upstream


class ScriptedUpstream:
    """An upstream answering exactly what a test scripted, per API path (plain body or SSE bytes).

    It plays fields the simulator never sends (``system_fingerprint``, a refusal, unknown
    response fields, OpenAI's per-chunk ``obfuscation``) and keeps every body it received."""

    def __init__(self) -> None:
        self.plain: dict[str, Any] = {}
        self.stream: dict[str, bytes] = {}
        self.seen: list[dict[str, Any]] = []
        self.state = types.SimpleNamespace()  # (what gateway_support.serve expects of an app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = orjson.loads(b"".join(chunks) or b"{}")
        path = scope["path"]
        self.seen.append({"path": path, "body": body})
        if body.get("stream"):
            payload, kind = self.stream.get(path, b""), b"text/event-stream"
        else:
            payload, kind = orjson.dumps(self.plain.get(path, {})), b"application/json"
        headers = [(b"content-type", kind), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def openai_sse(*chunks: dict[str, Any]) -> bytes:
    """An OpenAI stream of these chunks, then ``[DONE]``."""
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def anthropic_sse(*events: dict[str, Any]) -> bytes:
    """An Anthropic stream of these events (``event:`` named by each one's ``type``)."""
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


# ---------------------------------------------------------------- the stack


class ThreadStack:
    """Simulator + scripted upstream + gateway serving from a private loop in a daemon thread."""

    def __init__(
        self, configure: Callable[[dict[str, Any], Simulator], None] | None = None, **changes: Any
    ) -> None:
        """``changes`` replace top-level config tables; ``configure(data, sim)`` may edit the config
        last (providers pointing at ``sim``...)."""
        self.changes = changes
        self.configure = configure
        self.url = ""
        self.sim: Simulator
        self.service: GatewayService
        self.scripted = ScriptedUpstream()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._before: dict[str, dict[str, Any]] = {}
        self._thread = threading.Thread(target=self._run, name="fields-stack", daemon=True)

    # lifecycle

    def __enter__(self) -> ThreadStack:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the stack did not start within 30 s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by __enter__
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with Simulator() as sim, serve(self.scripted) as scripted_url:  # type: ignore[arg-type]
            self.sim = sim
            data = sim_config_dict(sim.anthropic_base_url, sim.openai_base_url)
            data["providers"] += [
                {
                    "name": "gpt_lead",
                    "type": "openai",
                    "model_id": GPT,
                    "priority": 1,
                    "max_retries": 0,
                    "base_url": sim.openai_base_url,
                    "api_key_env": "SIM_KEY",
                },
                {
                    "name": "claude_tail",
                    "type": "anthropic",
                    "model_id": CLAUDE,
                    "priority": 3,
                    "max_retries": 0,
                    "base_url": sim.anthropic_base_url,
                    "api_key_env": "SIM_KEY",
                },
                {
                    "name": "fixed_gpt",
                    "type": "openai",
                    "model_id": FIXED_GPT,
                    "priority": 3,
                    "max_retries": 0,
                    "base_url": scripted_url + "/v1",
                    "api_key_env": "SIM_KEY",
                },
                {
                    "name": "fixed_claude",
                    "type": "anthropic",
                    "model_id": FIXED_CLAUDE,
                    "priority": 4,
                    "max_retries": 0,
                    "base_url": scripted_url,
                    "api_key_env": "SIM_KEY",
                },
            ]
            data["routes"] = [dict(r) for r in ROUTES]
            data.update(self.changes)
            if self.configure is not None:
                self.configure(data, sim)
            app, self.service = make_app(data, providers={}, env=SIM_ENV)
            async with serve(app) as url:
                self.url = url
                self._ready.set()
                await self._stop.wait()

    # access from the test's thread

    def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` on the stack's loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(_awaited(make), self.loop).result(30)

    def reset(self) -> None:
        """Empty the upstream logs and remove fault rules (each test starts from here)."""
        self.sim.app.request_log.clear()
        self.sim.faults.set_rules([])
        self.scripted.seen.clear()
        self._before = {name: self.router_metrics(name) for name in self.service.targets}

    def upstream(self) -> list[dict[str, Any]]:
        """The simulator's request log since the last reset, oldest first."""
        return self.sim.app.request_log.entries()

    def upstream_bodies(self) -> list[dict[str, Any]]:
        return [e["body"] for e in self.upstream()]

    def last_body(self) -> dict[str, Any]:
        entries = self.upstream()
        assert entries, "the upstream received no request"
        body: dict[str, Any] = entries[-1]["body"]
        return body

    def records(self, request_id: str) -> list[UsageRecord]:
        """The ledger records of one gateway request (``x-request-id``; continuations included)."""

        async def read() -> list[UsageRecord]:
            await self.service.drain()
            ledger = self.service.tracker.ledger
            return [
                r
                for r in ledger.iter_records(MIN_US, MAX_US)
                if r.request_id == request_id or (r.request_id or "").startswith(request_id + ".")
            ]

        return self.call(read)

    def router_metrics(self, route: str) -> dict[str, Any]:
        """The route's per-provider router metrics (attempts, failures, breaker state)."""
        metrics: dict[str, Any] = self.service.targets[route].router.get_metrics()["providers"]
        return metrics

    def calls_since_reset(self, route: str) -> dict[str, tuple[int, int]]:
        """Per provider of ``route``: (attempts, failures) since the last :meth:`reset`."""
        now, before = self.router_metrics(route), self._before.get(route, {})
        return {
            name: (
                m["total_requests"] - before.get(name, {}).get("total_requests", 0),
                m["failed_requests"] - before.get(name, {}).get("failed_requests", 0),
            )
            for name, m in now.items()
        }


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


# ---------------------------------------------------------------- calling through the SDKs


@dataclass
class Got:
    """What a caller got from one request."""

    status: int
    headers: Mapping[str, str]
    body: dict[str, Any] | None = None
    """The plain reply's JSON, as sent."""
    message: Any = None
    """Plain: the SDK's parsed object. Streamed: the SDK's accumulated final message."""
    events: list[Any] = field(default_factory=list)
    """Streamed: the SDK's chunks (OpenAI) / events (Anthropic), in order."""
    error: Exception | None = None
    """An exception that ended the stream (an error event) or the request."""

    @property
    def request_id(self) -> str:
        return self.headers["x-request-id"]

    @property
    def dropped(self) -> list[str]:
        value = self.headers.get("x-greenlang-dropped-params")
        return value.split(",") if value else []


class Capture:
    """The body of every request the SDK sends (an httpx2 request hook)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def sync_hook(self, request: httpx2.Request) -> None:
        self.bodies.append(orjson.loads(request.read()))

    async def async_hook(self, request: httpx2.Request) -> None:
        self.bodies.append(orjson.loads(await request.aread()))


async def call_openai(
    url: str, kind: str, stream: bool, capture: Capture | None = None, key: str = ACME_KEY, **kw: Any
) -> Got:
    """``chat.completions.create(**kw)`` through the gateway with the sync or async client."""
    hooks: dict[str, Any] = {}
    if kind == "sync":
        if capture is not None:
            hooks = {"request": [capture.sync_hook]}
        with openai.OpenAI(
            base_url=url + "/v1",
            api_key=key,
            max_retries=0,
            timeout=20,
            http_client=httpx2.Client(event_hooks=hooks),
        ) as c:
            return _openai_sync(c, stream, kw)
    if capture is not None:
        hooks = {"request": [capture.async_hook]}
    async with openai.AsyncOpenAI(
        base_url=url + "/v1",
        api_key=key,
        max_retries=0,
        timeout=20,
        http_client=httpx2.AsyncClient(event_hooks=hooks),
    ) as ac:
        return await _openai_async(ac, stream, kw)


def _openai_sync(c: openai.OpenAI, stream: bool, kw: dict[str, Any]) -> Got:
    try:
        raw = c.chat.completions.with_raw_response.create(stream=stream, **kw)
    except openai.APIStatusError as exc:
        return Got(exc.status_code, exc.response.headers, _json(exc.response.content), error=exc)
    if not stream:
        return Got(raw.status_code, raw.headers, orjson.loads(raw.content), raw.parse())
    got = Got(raw.status_code, raw.headers)
    state = ChatCompletionStreamState()
    try:
        for chunk in raw.parse():  # type: ignore[union-attr]
            got.events.append(chunk)
            state.handle_chunk(chunk)
    except Exception as exc:
        got.error = exc
        return got
    got.message = _final(state)
    return got


async def _openai_async(c: openai.AsyncOpenAI, stream: bool, kw: dict[str, Any]) -> Got:
    try:
        raw = await c.chat.completions.with_raw_response.create(stream=stream, **kw)
    except openai.APIStatusError as exc:
        return Got(exc.status_code, exc.response.headers, _json(exc.response.content), error=exc)
    if not stream:
        return Got(raw.status_code, raw.headers, orjson.loads(raw.content), raw.parse())
    got = Got(raw.status_code, raw.headers)
    state = ChatCompletionStreamState()
    try:
        async for chunk in raw.parse():  # type: ignore[union-attr]
            got.events.append(chunk)
            state.handle_chunk(chunk)
    except Exception as exc:
        got.error = exc
        return got
    got.message = _final(state)
    return got


def _final(state: ChatCompletionStreamState[Any]) -> Any:
    """The SDK's accumulated completion (it raises on finish ``length`` / ``content_filter``, with it)."""
    try:
        return state.get_final_completion()
    except (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError) as exc:
        return exc.completion


async def call_anthropic(
    url: str, kind: str, stream: bool, capture: Capture | None = None, key: str = ACME_KEY, **kw: Any
) -> Got:
    """``messages.create(**kw)`` (plain) or ``messages.stream(**kw)`` (streamed) through the gateway."""
    hooks: dict[str, Any] = {}
    if kind == "sync":
        if capture is not None:
            hooks = {"request": [capture.sync_hook]}
        with anthropic.Anthropic(
            base_url=url, api_key=key, max_retries=0, timeout=20, http_client=httpx2.Client(event_hooks=hooks)
        ) as c:
            return _anthropic_sync(c, stream, kw)
    if capture is not None:
        hooks = {"request": [capture.async_hook]}
    async with anthropic.AsyncAnthropic(
        base_url=url,
        api_key=key,
        max_retries=0,
        timeout=20,
        http_client=httpx2.AsyncClient(event_hooks=hooks),
    ) as ac:
        return await _anthropic_async(ac, stream, kw)


def _anthropic_sync(c: anthropic.Anthropic, stream: bool, kw: dict[str, Any]) -> Got:
    try:
        if not stream:
            raw = c.messages.with_raw_response.create(**kw)
            return Got(raw.status_code, raw.headers, orjson.loads(raw.read()), raw.parse())
        manager = c.messages.stream(**kw)
        s = manager.__enter__()
    except anthropic.APIStatusError as exc:
        return Got(exc.status_code, exc.response.headers, _json(exc.response.content), error=exc)
    got = Got(s.response.status_code, s.response.headers)
    try:
        for event in s:
            got.events.append(event)
        got.message = s.get_final_message()
    except Exception as exc:  # an error event (or a broken stream) after the 200
        got.error = exc
    finally:
        manager.__exit__(None, None, None)
    return got


async def _anthropic_async(c: anthropic.AsyncAnthropic, stream: bool, kw: dict[str, Any]) -> Got:
    try:
        if not stream:
            raw = await c.messages.with_raw_response.create(**kw)
            return Got(raw.status_code, raw.headers, orjson.loads(await raw.read()), await raw.parse())
        manager = c.messages.stream(**kw)
        s = await manager.__aenter__()
    except anthropic.APIStatusError as exc:
        return Got(exc.status_code, exc.response.headers, _json(exc.response.content), error=exc)
    got = Got(s.response.status_code, s.response.headers)
    try:
        async for event in s:
            got.events.append(event)
        got.message = await s.get_final_message()
    except Exception as exc:  # an error event (or a broken stream) after the 200
        got.error = exc
    finally:
        await manager.__aexit__(None, None, None)
    return got


def _json(content: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
