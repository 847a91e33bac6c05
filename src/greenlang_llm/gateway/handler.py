"""One completion request over HTTP, for either API: the shared skeleton of both routes.

This module only speaks HTTP: auth, body limits, parsing through the dialect,
headers, rendering replies and stream frames, the HTTP layer's metrics and error
responses. What a request does — budget, routing, continuation, ledger — is
``GatewayService``'s (``service.py``), for plain and streamed requests alike. A
``Dialect`` (``routes_openai``, ``routes_anthropic``) supplies the four
API-specific pieces: parse a body, render a reply, build a stream writer, and
the API's name for error shapes; everything else is the same code for both, so
the two APIs cannot drift apart. Responses are minimal ASGI callables with
precomputed header bytes: a completion is the hot path and Starlette's generic
``Response`` does more work than we need here.

Streaming: ``GatewayService.open_stream`` pulls the first chunk *before* the
response starts, so every failure up to the first byte (including failover
inside the router) still becomes a proper HTTP error; after that, a failure ends
the stream with the API's own error event, never with a clean finish. A client
that disconnects cancels the upstream call at once, and the tokens it was sent
are recorded (``StreamRelay``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from .._errors import BudgetExceededError, InvalidRequestError, ProviderError, StreamInterruptedError
from .._types import GenerationRequest, GenerationResponse, TokenUsage
from ..content import Delta
from ..wire._common import RequestOptions
from .errors import (
    ANTHROPIC,
    ApiError,
    bad_request,
    body_timeout,
    classify,
    error_response,
    forbidden,
    stream_error_frame,
    too_large,
    unauthorized,
)
from .keys import VirtualKey, extract_key
from .service import GatewayError, GatewayService, OpenStream, new_request_id
from .worst_case import budget_exhausted_message

if TYPE_CHECKING:
    from ..providers.base_provider import BaseLLMProvider
    from .metrics import Metrics
    from .targets import Target

__all__ = ["Dialect", "RawResponse", "StreamRelay", "authenticate", "handle_completion", "read_body"]

logger = logging.getLogger(__name__)

_JSON = (b"content-type", b"application/json")
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")
_NO_CACHE = (b"cache-control", b"no-cache")
_DROPPED = b"x-greenlang-dropped-params"
"""The request's hints the serving provider could not honour and left out (docs/fields.md)."""


class Writer(Protocol):
    def start(self) -> bytes: ...
    def delta(self, text: str) -> bytes: ...
    def deltas(self, items: Sequence[Delta]) -> bytes: ...
    def finish(
        self, finish_reason: str | None, usage: TokenUsage, stop_sequence: str | None = None
    ) -> bytes: ...


class Dialect(Protocol):
    api: str

    def parse(self, body: Any) -> tuple[GenerationRequest, RequestOptions]: ...
    def render(self, request_id: str, response: GenerationResponse) -> bytes: ...
    def writer(
        self,
        request_id: str,
        model: str,
        options: RequestOptions,
        request: GenerationRequest,
        provider: BaseLLMProvider,
    ) -> Writer: ...


class RawResponse:
    """A complete response with prebuilt header bytes."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.body = body
        self.headers = [*headers, (b"content-length", str(len(body)).encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class StreamRelay:
    """A started stream as an ASGI response: each chunk is rendered with the dialect's writer and sent.

    Chunks are pulled straight from the service's ``OpenStream`` (no generator layer between)
    and each frame is sent the moment its chunk arrives. Frames that come together still leave
    together: an upstream read carrying many deltas is one chunk already
    (``providers/_stream_reader.py``), and what the response writes in one event-loop turn
    leaves in one ``send()`` under ``greenlang-llm serve`` (``write_coalescing.py``).

    A failure after the first byte ends the stream with the API's own error event, never
    with a clean finish. A watcher task waits for the client's disconnect and cancels this
    one, so an abandoned stream stops its upstream call at once. Whatever happened, the
    stream is closed (which books the request) and the request's metrics are recorded before
    the response's last message, so a client that saw the end finds its ledger entry queued.
    """

    __slots__ = ("api", "first", "headers", "metrics", "started", "stream", "timed", "writer")

    def __init__(
        self,
        stream: OpenStream,
        writer: Writer,
        headers: list[tuple[bytes, bytes]],
        first: bytes,
        metrics: Metrics,
        api: str,
        started: float,
    ) -> None:
        self.stream = stream
        self.writer = writer
        self.headers = headers
        self.first = first
        """The first frame (the writer's start and the first chunk), rendered before the response."""
        self.metrics = metrics
        self.api = api
        self.started = started
        self.timed = bool(first)
        """Time to first byte observed (when the first frame is not empty, before the response)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        state = {"done": False, "gone": False}

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    if not state["done"]:
                        state["gone"] = True
                        task.cancel()
                    return

        stream = self.stream
        status = 200
        booked = False
        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            if self.first:
                await send({"type": "http.response.body", "body": self.first, "more_body": True})
            writer = self.writer
            while True:
                try:
                    chunk = await stream.__anext__()
                    if chunk.deltas:
                        out = writer.deltas(chunk.deltas)
                    else:
                        out = writer.delta(chunk.text) if chunk.text else b""
                except StopAsyncIteration:
                    try:  # under durable_replies the final event waits for a durable record
                        usage = await stream.finish()
                        last = writer.finish(stream.finish_reason, usage, stream.stop_sequence)
                    except Exception as exc:
                        status, last = self._error(exc)
                    break
                except Exception as exc:
                    status, last = self._error(exc)
                    break
                if out:
                    if not self.timed:
                        self.metrics.ttfb.observe((self.api,), time.perf_counter() - self.started)
                        self.timed = True
                    await send({"type": "http.response.body", "body": out, "more_body": True})
            await send({"type": "http.response.body", "body": last, "more_body": True})
            state["done"] = True
            booked = True
            await self._end(status)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not state["gone"]:
                raise
            task.uncancel()
        except OSError:  # the client went away while we were writing
            pass
        finally:
            state["done"] = True
            watcher.cancel()
            if not booked:
                await self._end(status)

    def _error(self, exc: Exception) -> tuple[int, bytes]:
        """The status and the error event ending a started stream."""
        err = exc.error if isinstance(exc, GatewayError) else _stream_error(exc)
        self.metrics.record_error(self.api, err.kind)
        logger.info("stream %s ended by upstream error: %s", self.stream.request_id, type(exc).__name__)
        return err.status, stream_error_frame(self.api, err)

    async def _end(self, status: int) -> None:
        """Close the stream (books the request, once) and record the request's metrics."""
        metrics = self.metrics
        metrics.in_flight -= 1
        await self.stream.close()
        metrics.record_request(self.api, self.stream.route, self.stream.provider_name, status)
        metrics.latency.observe((self.api, "true"), time.perf_counter() - self.started)


async def read_body(request: Request, limit: int, within: float | None = None) -> bytes:
    """The body, straight from ``receive``; refuses more than ``limit`` bytes without buffering them (413).

    ``within`` (seconds) bounds the whole body (408): ``serve``'s protocol already cuts a slow body off
    (gateway/http_guard.py), this keeps the app from waiting forever under any other server."""
    for name, value in request.scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise GatewayError(too_large(limit))
            break
    try:
        async with asyncio.timeout(within):
            return await _receive_body(request.receive, limit)
    except TimeoutError:
        assert within is not None
        raise GatewayError(body_timeout(within)) from None


async def _receive_body(receive: Receive, limit: int) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise GatewayError(too_large(limit))
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":  # not a short body: nobody is there to answer
            raise GatewayError(bad_request("Request body incomplete: the client disconnected."))
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise GatewayError(too_large(limit))
        parts.append(chunk)
    return b"".join(parts)


def authenticate(service: GatewayService, request: Request) -> VirtualKey:
    key = service.keys.lookup(extract_key(request.scope["headers"]))
    if key is None:
        raise GatewayError(unauthorized("Invalid or missing API key."))
    return key


def _decode(body: bytes) -> Any:
    if not body:
        raise GatewayError(bad_request("Request body is empty; expected a JSON object."))
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(bad_request(f"Malformed JSON in request body: {exc.msg}.")) from None


def _parse(dialect: Dialect, body: Any) -> tuple[GenerationRequest, RequestOptions]:
    """The dialect's parse; any crash on odd input is still the caller's 400, never our 500."""
    try:
        return dialect.parse(body)
    except InvalidRequestError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        logger.warning("request parser crashed on malformed input (%s); answered 400", type(exc).__name__)
        raise GatewayError(bad_request("Invalid request body: a field has the wrong type or shape")) from None


def _common_headers(api: str, request_id: str) -> list[tuple[bytes, bytes]]:
    rid = request_id.encode()
    headers = [(b"x-request-id", rid)]
    if api == ANTHROPIC:
        headers.append((b"request-id", rid))
    return headers


async def handle_completion(request: Request, dialect: Dialect) -> Any:
    """The whole request: returns an ASGI response (plain, stream or error). Never raises."""
    service: GatewayService = request.app.state.service
    started = time.perf_counter()
    request_id = new_request_id()
    api = dialect.api
    metrics = service.metrics
    route = "-"
    metrics.in_flight += 1
    try:
        try:
            key = authenticate(service, request)
            if key.is_admin:
                raise GatewayError(forbidden("The admin key cannot call models; use a tenant key."))
            server = service.config.server
            body = _decode(await read_body(request, server.max_body_bytes, server.body_timeout))
            gen, options = _parse(dialect, body)
            target = service.resolve(options.model, key)
            route = target.name
            if not target.drop_params:
                gen.drop_params = False  # the route refuses a hint its provider would leave out
            if (deadline := service.deadline(target, request.headers)) is not None:
                gen.timeout = deadline  # the whole chain: retries, failover and backoff included
            service.admit(key)
            if options.stream:
                return await _open_stream(service, dialect, key, target, gen, options, request_id, started)
            response = await service.generate(key, target, gen, request_id)
        except GatewayError as exc:
            return _fail(service, api, exc.error, request_id, route, started)
        except (InvalidRequestError, ProviderError) as exc:
            return _fail(service, api, classify(exc), request_id, route, started)
        except Exception as exc:
            logger.exception("unexpected error in %s request %s", api, request_id)
            return _fail(service, api, classify(exc), request_id, route, started)
        headers = [
            _JSON,
            *_common_headers(api, request_id),
            (b"x-greenlang-provider", response.provider.encode()),
            (b"x-greenlang-cost-usd", f"{response.usage.total_cost_usd:.9f}".encode()),
        ]
        if response.dropped_params:
            headers.append((_DROPPED, ",".join(response.dropped_params).encode()))
        metrics.record_request(api, route, response.provider, 200)
        metrics.latency.observe((api, "false"), time.perf_counter() - started)
        return RawResponse(200, dialect.render(request_id, response), headers)
    finally:
        metrics.in_flight -= 1


def _fail(
    service: GatewayService, api: str, err: ApiError, request_id: str, route: str, started: float
) -> Any:
    service.metrics.record_error(api, err.kind)
    service.metrics.record_request(api, route, "-", err.status)
    service.metrics.latency.observe((api, "false"), time.perf_counter() - started)
    return error_response(api, err, request_id)


async def _open_stream(
    service: GatewayService,
    dialect: Dialect,
    key: VirtualKey,
    target: Target,
    gen: GenerationRequest,
    options: RequestOptions,
    request_id: str,
    started: float,
) -> StreamRelay:
    """Start the stream (failures up to its first chunk raise: an HTTP error) and render its first frame."""
    stream = await service.open_stream(key, target, gen, request_id)
    try:
        writer = dialect.writer(request_id, stream.model, options, gen, stream.provider)
        deltas = stream.first.deltas
        if deltas and deltas[0].kind == "meta":  # stream-level fields: before the first frame
            writer.deltas(deltas[:1])
            deltas = deltas[1:]
        first = writer.start()
        if deltas:
            first += writer.deltas(deltas)
        elif stream.first.text:
            first += writer.delta(stream.first.text)
    except BaseException:
        await stream.close()
        raise
    metrics = service.metrics
    metrics.in_flight += 1  # until the relay ends: the stream outlives this call
    if first:
        metrics.ttfb.observe((dialect.api,), time.perf_counter() - started)
    headers = [
        _SSE,
        _NO_CACHE,
        *_common_headers(dialect.api, request_id),
        (b"x-greenlang-provider", stream.provider_name.encode()),
    ]
    if stream.dropped_params:
        headers.append((_DROPPED, ",".join(stream.dropped_params).encode()))
    return StreamRelay(stream, writer, headers, first, metrics, dialect.api, started)


def _stream_error(exc: Exception) -> ApiError:
    """The error event ending a started stream; a continuation the budget refused is a budget error."""
    cause = exc.__cause__
    if isinstance(exc, StreamInterruptedError) and isinstance(cause, BudgetExceededError):
        why = (
            "the stream was cut after it began, and continuing it on another provider does not fit the "
            "remaining budget."
        )
        message = budget_exhausted_message(cause.tenant_id, cause, why)
        return dataclasses.replace(classify(cause), message=message)
    return classify(exc)
