"""The simulator's ASGI app: both APIs on one server, plus the ``/_sim`` admin endpoints.

The zero-latency path has to serve thousands of requests per second on one
core so that it never bounds a gateway benchmark, so the three POST endpoints
are dispatched by path straight from the ASGI callable (headers read once into
a dict, orjson, no Request object, no middleware); everything else (models,
admin, 404/405 answers) goes through a plain Starlette app.

A request's path: key check (hash only) → JSON body (kept in the request log)
→ the API's own validation (``wire``; and for requests beyond text, the tool-id
pairing the real APIs check) → fault pick (``x-sim-fault`` header first, then
rules) → latency → deterministic reply (``replies``) → plain JSON or a stream.
Text-only replies go through the writers' text path (``render_response(text=)``,
``StreamWriter.delta``), byte for byte and as fast as ever; only a reply with
thinking, tool calls, logprobs or several choices is rendered from neutral
content (``render_response(content=)``, ``StreamWriter.deltas``).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._errors import InvalidRequestError
from .._types import GenerationRequest
from ..wire import anthropic as wa
from ..wire import openai as wo
from ..wire._common import RequestFieldError
from .apis import ANTHROPIC, OPENAI, Api, json_response
from .config import ModelBehaviour, SimulatorConfig, hash_key
from .faults import FaultInjector, FaultRule, parse_fault_header
from .replies import Reply, count_input_tokens, make_reply, stream_deltas, tool_id_error
from .request_log import RequestLog
from .stats import Stats
from .streaming import TRANSPORT_KEY, StreamPlan, StreamResponse, reset_connection, settle, wait_until

__all__ = ["SimulatorApp"]

_ANSWER_KINDS = frozenset(ANTHROPIC.answers) | {"rate_limit"}
_NEW_VERSION = "2026-10-21"
_SAMPLING = ("temperature", "top_p", "top_k")
_DEFAULT_MODELS = ("claude-sonnet-4-6", "gpt-4.1-mini")


@dataclass(slots=True)
class Incoming:
    """One API request as the handlers see it: lower-cased header dict, whole body."""

    path: str
    headers: dict[str, str]
    body: bytes
    scope: Scope


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


class SimulatorApp:
    """Holds the simulator's state; ``asgi`` is what a server runs."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.faults = FaultInjector(self.config.faults, self.config.seed)
        self.stats = Stats()
        self.request_log = RequestLog(self.config.request_log_size)
        self.closing = False
        self._jitter = random.Random(self.config.seed)
        self._ids = itertools.count(1)
        self._fast: dict[str, Callable[[Incoming], Awaitable[Response]]] = {
            "/v1/messages": self.messages,
            "/v1/messages/count_tokens": self.count_tokens,
            "/v1/chat/completions": self.chat_completions,
        }
        routes = [
            *(Route(path, self._via_starlette, methods=["POST"]) for path in self._fast),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/_sim/stats", self.admin_stats, methods=["GET"]),
            Route("/_sim/faults", self.admin_faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sim/reset", self.admin_reset, methods=["POST"]),
            Route("/_sim/requests", self.admin_requests, methods=["GET", "DELETE"]),
            Route("/_sim/models", self.admin_models, methods=["GET", "POST"]),
        ]
        self.starlette = Starlette(routes=routes)

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Fast path for the API POSTs; leaves uvicorn's transport in the scope for reset faults."""
        if scope["type"] == "http":
            scope[TRANSPORT_KEY] = getattr(getattr(send, "__self__", None), "transport", None)
            handler = self._fast.get(scope["path"]) if scope["method"] == "POST" else None
            if handler is not None:
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
                incoming = Incoming(scope["path"], headers, await _read_body(receive), scope)
                response = await handler(incoming)
                await response(scope, receive, send)
                return
        app: ASGIApp = self.starlette
        await app(scope, receive, send)

    async def _via_starlette(self, request: Request) -> Response:
        """The same handlers behind Starlette routing (for servers that bypass ``asgi``)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        incoming = Incoming(request.url.path, headers, await request.body(), request.scope)
        return await self._fast[request.url.path](incoming)

    def reset(self, seed: int | None = None) -> None:
        """Stats to zero, faults back to the config's, RNGs reseeded, request log emptied."""
        self.stats = Stats()
        self.request_log.clear()
        seed = self.config.seed if seed is None else seed
        self.faults.reset(self.config.faults, seed)
        self._jitter = random.Random(seed)

    # ------------------------------------------------------------ API endpoints

    async def messages(self, request: Incoming) -> Response:
        return await self._generate(request, ANTHROPIC)

    async def chat_completions(self, request: Incoming) -> Response:
        return await self._generate(request, OPENAI)

    async def count_tokens(self, request: Incoming) -> Response:
        self.stats.request(request.path)
        rid = self._request_id()
        early = self._check_headers(request, ANTHROPIC, rid)
        if early is not None:
            return self._answered(early)
        try:
            raw = orjson.loads(request.body)
            self.request_log.add(request.path, request.headers, raw)
            gen, model = wa.parse_count_tokens_request(raw)
        except (orjson.JSONDecodeError, InvalidRequestError) as exc:
            return self._answered(self._bad_request(ANTHROPIC, exc, rid))
        behaviour = self.config.behaviour(model)
        tokens = count_input_tokens(gen) + behaviour.cache_read_tokens + behaviour.cache_write_tokens
        return self._answered(json_response(wa.render_count_tokens(tokens), 200, {"request-id": rid}), model)

    async def models(self, request: Request) -> Response:
        self.stats.request(request.url.path)
        ids = self.config.model_ids() or list(_DEFAULT_MODELS)
        if "anthropic-version" in request.headers:
            return self._answered(json_response(wa.render_models(ids)))
        return self._answered(json_response(wo.render_models(ids)))

    # ------------------------------------------------------------ the generation path

    async def _generate(self, request: Incoming, api: Api) -> Response:
        path = request.path
        self.stats.request(path)
        rid = self._request_id()
        early = self._check_headers(request, api, rid)
        if early is not None:
            return self._answered(early)
        try:
            raw = orjson.loads(request.body)
            self.request_log.add(path, request.headers, raw)
            if (
                api is ANTHROPIC
                and self.config.enforce_version_rules
                and request.headers.get("anthropic-version") == _NEW_VERSION
                and isinstance(raw, dict)
            ):
                for name in _SAMPLING:
                    if name in raw:
                        msg = f"{name}: not supported on anthropic-version {_NEW_VERSION}"
                        raise RequestFieldError(msg, name)
            gen, options = api.parse(raw)
        except (orjson.JSONDecodeError, InvalidRequestError) as exc:
            return self._answered(self._bad_request(api, exc, rid))
        if gen.rich and _has_blocks(gen):
            unpaired = tool_id_error(api.name, raw)
            if unpaired is not None:
                return self._answered(api.error(400, unpaired[0], rid, param=unpaired[1]))
        model = options.model
        if self.config.strict_models and not self.config.knows(model):
            return self._answered(api.fault(FaultRule("not_found"), rid, model, 0, 0), model)
        try:
            fault = self._pick_fault(request, path, model, options.stream, gen.to_messages()[-1]["role"])
        except ValueError as exc:
            return self._answered(api.error(400, f"x-sim-fault: {exc}", rid))
        behaviour = self.config.behaviour(model)
        if fault is not None:
            self.stats.faults[fault.kind] += 1
            if fault.kind == "reset":
                if not reset_connection(request.scope):
                    raise ConnectionAbortedError("simulated connection reset")
                await settle()
                return self._answered(Response(status_code=499), model)
            if fault.kind == "slow":
                await wait_until(fault.delay, lambda: self.closing)
            elif fault.kind in _ANSWER_KINDS:
                tokens = count_input_tokens(gen)
                return self._answered(api.fault(fault, rid, model, tokens, behaviour.context_window), model)
        delay = behaviour.latency_ms
        if behaviour.jitter_ms:
            delay += self._jitter.random() * behaviour.jitter_ms
        if delay > 0:
            await wait_until(delay / 1000.0, lambda: self.closing)
        reply = make_reply(gen, model, behaviour, api.name)
        if reply.usage.input_tokens > behaviour.context_window:
            ctx = FaultRule("context_length")
            return self._answered(
                api.fault(ctx, rid, model, reply.usage.input_tokens, behaviour.context_window), model
            )
        if options.stream:
            return self._stream(api, reply, model, rid, options.include_usage, behaviour.token_ms, fault)
        self.stats.tokens(reply.usage.input_tokens, reply.usage.output_tokens)
        if api is ANTHROPIC:
            body = self._anthropic_body(reply, f"msg_sim{rid[7:]}", model)
        else:
            body = self._openai_body(reply, f"chatcmpl-sim{rid[7:]}", model, int(time.time()))
        return self._answered(json_response(body, 200, {api.request_id_header: rid}), model)

    @staticmethod
    def _anthropic_body(reply: Reply, id: str, model: str) -> dict[str, Any]:
        return wa.render_response(
            id=id, model=model, text=reply.text, finish_reason=reply.finish_reason,
            usage=reply.usage, stop_sequence=reply.stop_sequence, content=reply.content,
        )

    @staticmethod
    def _openai_body(reply: Reply, id: str, model: str, created: int) -> dict[str, Any]:
        if reply.plain:
            return wo.render_response(
                id=id, model=model, text=reply.text, finish_reason=reply.finish_reason,
                usage=reply.usage, created=created,
            )
        body: dict[str, Any] = {}
        for i, choice in enumerate((reply, *reply.choices)):
            rendered = wo.render_response(
                id=id, model=model, text=choice.text, finish_reason=choice.finish_reason,
                usage=reply.usage, created=created, content=choice.content, logprobs=choice.logprobs,
            )
            if i == 0:
                body = rendered
            else:
                extra = rendered["choices"][0]
                extra["index"] = i
                body["choices"].append(extra)
        return body

    def _stream(
        self, api: Api, reply: Reply, model: str, rid: str, include_usage: bool, token_ms: float,
        fault: FaultRule | None,
    ) -> Response:
        stream_fault = fault if fault is not None and fault.kind not in ("slow",) else None
        if api is ANTHROPIC:
            aw = wa.StreamWriter(f"msg_sim{rid[7:]}", model, reply.usage)
            head = aw.start()
            if reply.content is None:
                frames = [aw.delta(p) for p in reply.pieces]
            else:
                frames = [aw.deltas(group) for group in stream_deltas(reply)]
            tail = aw.finish(reply.finish_reason, reply.usage, reply.stop_sequence)
            error = aw.error(529, "Overloaded")
            invalid = b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{\n\n'
        else:
            created = int(time.time())
            ow = wo.StreamWriter(f"chatcmpl-sim{rid[7:]}", model, created, include_usage)
            head = ow.start()
            if reply.plain:
                frames = [ow.delta(p) for p in reply.pieces]
            else:
                frames = [ow.deltas(group) for group in stream_deltas(reply)]
                if reply.choices:
                    head, frames = _other_choices(reply, f"chatcmpl-sim{rid[7:]}", model, created, head,
                                                  frames)
            tail = ow.finish(reply.finish_reason, reply.usage)
            error = ow.error(500, "Internal server error")
            invalid = b'data: {"id":"chatcmpl-sim","object":"chat.completion.chunk","choices":[{\n\n'
        # what StreamResponse will send: every token unless the fault stops early (no_terminal
        # sends them all and only withholds the terminal event; its ``after`` does not apply)
        output = reply.usage.output_tokens
        if stream_fault is None or stream_fault.kind in ("no_terminal", "slow_first_token"):
            sent = output
        else:  # a frame is a token of a text reply; of others, count at most what was sent
            sent = min(stream_fault.after, len(frames), output)
        self.stats.tokens(reply.usage.input_tokens, sent)
        plan = StreamPlan(head, frames, tail, error, invalid, token_ms / 1000.0, stream_fault)
        headers = {api.request_id_header: rid}
        return self._answered(StreamResponse(plan, headers, self.stats, lambda: self.closing), model)

    # ------------------------------------------------------------ helpers

    def _request_id(self) -> str:
        return f"req_sim{next(self._ids):016d}"

    def _answered(self, response: Response, model: str | None = None) -> Response:
        self.stats.answered(response.status_code, model)
        return response

    def _check_headers(self, request: Incoming, api: Api, rid: str) -> Response | None:
        """401 for a missing or unknown key (compared by hash); 400 without anthropic-version."""
        headers = request.headers
        key = headers.get("x-api-key")
        if key is None:
            auth = headers.get("authorization", "")
            key = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if (not key and self.config.require_key) or (
            key and self.config.valid_keys_sha256 and hash_key(key) not in self.config.valid_keys_sha256
        ):
            return api.fault(FaultRule("auth"), rid, "", 0, 0)
        if api is ANTHROPIC and "anthropic-version" not in headers:
            return api.error(400, "anthropic-version: header is required", rid)
        return None

    def _bad_request(self, api: Api, exc: Exception, rid: str) -> Response:
        if isinstance(exc, orjson.JSONDecodeError):
            return api.error(400, "We could not parse the JSON body of your request.", rid)
        if isinstance(exc, RequestFieldError):
            return api.error(400, exc.message, rid, code=exc.code, param=exc.param)
        return api.error(400, str(exc), rid)

    def _pick_fault(
        self, request: Incoming, path: str, model: str, stream: bool, last_role: str
    ) -> FaultRule | None:
        header = request.headers.get("x-sim-fault")
        if header:
            rule = parse_fault_header(header)
            return rule if rule.matches(path, model, stream, last_role == "assistant") else None
        if not self.faults.rules:
            return None
        return self.faults.pick(path, model, stream, last_role == "assistant")

    # ------------------------------------------------------------ admin

    async def admin_stats(self, request: Request) -> Response:
        return json_response(self.stats.snapshot())

    async def admin_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.set_rules([])
        elif request.method == "POST":
            try:
                data: Any = orjson.loads(await request.body())
                if isinstance(data, dict) and "faults" in data:
                    self.faults.set_rules([FaultRule.from_dict(f) for f in data["faults"]])
                elif isinstance(data, dict):
                    self.faults.add(FaultRule.from_dict(data))
                else:
                    raise ValueError("send a fault object, or {\"faults\": [...]} to replace all")
            except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
                return json_response({"error": str(exc)}, 400)
        return json_response({"faults": [r.to_dict() for r in self.faults.rules]})

    async def admin_models(self, request: Request) -> Response:
        """``POST {"model-or-glob": {settings}}`` changes behaviour at run time (unset keys: defaults)."""
        if request.method == "POST":
            try:
                data: Any = orjson.loads(await request.body())
                if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
                    raise ValueError('send {"model": {"latency_ms": 50, ...}, ...}')
                updates = {str(k): ModelBehaviour.from_dict(v, self.config.defaults) for k, v in data.items()}
            except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
                return json_response({"error": str(exc)}, 400)
            self.config.models.update(updates)
        return json_response({name: b.to_dict() for name, b in self.config.models.items()})

    async def admin_requests(self, request: Request) -> Response:
        """``GET`` the request log (``?last=K``: the newest K), ``DELETE`` empties it."""
        if request.method == "DELETE":
            self.request_log.clear()
            return json_response({"requests": []})
        last = request.query_params.get("last")
        if last is not None and not (last.isascii() and last.isdigit()):
            return json_response({"error": "last must be a whole number of requests"}, 400)
        return json_response({"requests": self.request_log.entries(None if last is None else int(last))})

    async def admin_reset(self, request: Request) -> Response:
        body = await request.body()
        seed = None
        if body:
            try:
                seed = orjson.loads(body).get("seed")
            except (orjson.JSONDecodeError, AttributeError):
                return json_response({"error": "body must be a JSON object like {\"seed\": 1}"}, 400)
        self.reset(seed if isinstance(seed, int) else None)
        return json_response({"reset": True})


def _has_blocks(request: GenerationRequest) -> bool:
    """Some message holds content blocks (only then can tool calls and results pair up wrongly)."""
    return any(type(m["content"]) is not str for m in request.messages or ())


def _reindexed(frames: bytes, index: int) -> bytes:
    """OpenAI chunks with every choice's ``index`` set to ``index`` (a writer only writes choice 0)."""
    out = []
    for event in frames.split(b"\n\n"):
        if event.startswith(b"data: {"):
            chunk = orjson.loads(event[6:])
            for choice in chunk.get("choices") or ():
                choice["index"] = index
            event = b"data: " + orjson.dumps(chunk)
        out.append(event)
    return b"\n\n".join(out)


def _other_choices(
    reply: Reply, id: str, model: str, created: int, head: bytes, frames: list[bytes]
) -> tuple[bytes, list[bytes]]:
    """OpenAI ``n`` > 1: every choice's role chunk in ``head``, then the choices' frames taken in
    turn (frame k of choice 0, of choice 1, ...), then the finish chunks of choices 1..n-1 (choice
    0's finish, the usage and ``[DONE]`` stay in the tail)."""
    columns, finishes = [frames], []
    for i, choice in enumerate(reply.choices, 1):
        writer = wo.StreamWriter(id, model, created, False)
        head += _reindexed(writer.start(), i)
        columns.append([
            _reindexed(writer.deltas(group), i)
            for group in stream_deltas(choice)
        ])
        finishes.append(_reindexed(writer.finish(choice.finish_reason, choice.usage)[: -len(wo.DONE)], i))
    interleaved = [f for row in itertools.zip_longest(*columns) for f in row if f is not None]
    return head, interleaved + finishes
