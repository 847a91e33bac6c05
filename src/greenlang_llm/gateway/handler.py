"""One completion request over HTTP, for either API: the shared skeleton of both routes.

A ``Dialect`` (``routes_openai``, ``routes_anthropic``) supplies the four
API-specific pieces: parse a body, render a reply, build a stream writer, and
the API's name for error shapes. Everything else — auth, body limits, budget,
routing, streaming, ledger — is the same code for both, so the two APIs cannot
drift apart. Responses are minimal ASGI callables with precomputed header
bytes: a completion is the hot path and Starlette's generic ``Response`` does
more work than we need here.

Streaming: the first chunk is pulled *before* the response starts, so every
failure up to the first byte (including failover inside the router) still
becomes a proper HTTP error; after that, a failure ends the stream with the
API's own error event, never with a clean finish. A client that disconnects
cancels the upstream call at once, and the tokens it was sent are recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from .._errors import BudgetExceededError, InvalidRequestError, ProviderError, StreamInterruptedError
from .._types import GenerationRequest, GenerationResponse, StreamChunk, TokenUsage
from ..continuation import UsagePart, combine
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
from .service import GatewayError, GatewayService, Target, budget_exhausted_message, new_request_id

if TYPE_CHECKING:
    from ..cost_tracker import Reservation
    from ..providers.base_provider import BaseLLMProvider
    from .continuation_budget import ContinuationBudget

__all__ = ["Dialect", "RawResponse", "StreamRelay", "authenticate", "handle_completion", "read_body"]

logger = logging.getLogger(__name__)

_JSON = (b"content-type", b"application/json")
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")
_NO_CACHE = (b"cache-control", b"no-cache")


class Writer(Protocol):
    def start(self) -> bytes: ...
    def delta(self, text: str) -> bytes: ...
    def finish(self, finish_reason: str | None, usage: TokenUsage) -> bytes: ...


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
    """Sends SSE frames as they come; a client disconnect cancels the producer at once.

    Each frame is sent the moment the producer yields it. Frames that come together
    still leave together: an upstream read carrying many deltas is one frame already
    (``providers/_stream_reader.py``), and what the response writes in one event-loop
    turn leaves in one ``send()`` under ``greenlang-llm serve`` (``write_coalescing.py``).
    A watcher task waits for the client's disconnect and cancels this one, so an abandoned
    stream stops its upstream call at once and the producer's cleanup (ledger entry,
    upstream close) runs.
    """

    __slots__ = ("first", "frames", "headers")

    def __init__(
        self, frames: AsyncIterator[bytes], headers: list[tuple[bytes, bytes]], first: bytes = b""
    ) -> None:
        self.frames = frames
        self.headers = headers
        self.first = first
        """Already taken from ``frames`` (so the producer has started and its cleanup will run)."""

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

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            if self.first:
                await send({"type": "http.response.body", "body": self.first, "more_body": True})
            async for frame in self.frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            state["done"] = True
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
            with contextlib.suppress(BaseException):
                await self.frames.aclose()  # type: ignore[attr-defined]


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
        metrics.record_request(api, route, response.provider, 200)
        metrics.latency.observe((api, "false"), time.perf_counter() - started)
        return RawResponse(200, dialect.render(request_id, response), headers)
    finally:
        metrics.in_flight -= 1


async def _settle_parts(
    service: GatewayService,
    reservation: Reservation | None,
    key: VirtualKey,
    usage: TokenUsage | None,
    provider: str,
    model: str,
    request_id: str,
    durable: bool = False,
    budget: ContinuationBudget | None = None,
) -> None:
    """One ledger record per upstream call of a continued stream (``usage.parts``), else one record.

    The first call keeps the request id; a continuation's record is ``<request id>.2``, ``.3``, ...
    (the ledger keys idempotent writes by request id). The reservation goes with the last record,
    and so do the continuations' extra reservations (``budget``): queued right behind it, each is
    freed once, only after every record of the request is durable.
    """
    parts: list[UsagePart] = []
    if usage is not None:
        parts = list(getattr(usage, "parts", None) or [UsagePart(provider, model, usage)])
    extra = budget.reservations if budget is not None else []
    try:
        if not parts:
            service.settle(reservation, key, None, None, None, request_id)
            return
        for i, part in enumerate(parts):
            rid = request_id if i == 0 else f"{request_id}.{i + 1}"
            last = i == len(parts) - 1
            if last and durable:
                await service.settle_durably(reservation, key, part.usage, part.provider, part.model_id, rid)
            else:
                service.settle(reservation if last else None, key, part.usage, part.provider, part.model_id,
                               rid)
    finally:
        held, extra[:] = list(extra), []
        for hold in held:
            service.settle(hold, key, None, None, None, request_id)


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
) -> Any:
    reservation = service.reserve(key, target, gen)
    budget = service.continuation_budget(key, target)
    upstream = target.router.stream(gen, before_continuation=budget).__aiter__()
    try:
        first = await upstream.__anext__()
    except BaseException as exc:
        await _settle_parts(service, reservation, key, None, "", "", request_id, budget=budget)
        with contextlib.suppress(BaseException):
            await upstream.aclose()  # type: ignore[attr-defined]
        if isinstance(exc, StopAsyncIteration):
            raise ProviderError("upstream stream ended before any data", retryable=True) from None
        raise
    provider_name = first.provider or (target.members[0][0] if len(target.members) == 1 else "unknown")
    provider = target.provider(provider_name)
    model = first.model_id or provider.model_id
    writer = dialect.writer(request_id, model, options, gen, provider)
    headers = [
        _SSE,
        _NO_CACHE,
        *_common_headers(dialect.api, request_id),
        (b"x-greenlang-provider", provider_name.encode()),
    ]
    frames = _relay(
        service,
        dialect.api,
        key,
        target,
        gen,
        request_id,
        reservation,
        upstream,
        first,
        provider_name,
        model,
        writer,
        started,
        budget,
    )
    # Take the first frame now: a started generator always runs its cleanup (ledger entry,
    # upstream close) when closed, even if the client is gone before the response begins.
    first_frame = await frames.__anext__()
    return StreamRelay(frames, headers, first_frame)


async def _relay(
    service: GatewayService,
    api: str,
    key: VirtualKey,
    target: Target,
    gen: GenerationRequest,
    request_id: str,
    reservation: Reservation | None,
    upstream: AsyncIterator[StreamChunk],
    first: StreamChunk,
    provider: str,
    model: str,
    writer: Writer,
    started: float,
    budget: ContinuationBudget | None = None,
) -> AsyncIterator[bytes]:
    metrics = service.metrics
    texts: list[str] = []
    usage: TokenUsage | None = None
    finish: str | None = None
    status = 200
    settled = False
    metrics.in_flight += 1
    try:
        out = writer.start()
        chunk = first
        first_frame = True
        while True:
            if chunk.text:
                texts.append(chunk.text)
                out += writer.delta(chunk.text)
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.finish_reason is not None:
                finish = chunk.finish_reason
            if out:
                if first_frame:
                    metrics.ttfb.observe((api,), time.perf_counter() - started)
                    first_frame = False
                yield out
                out = b""
            try:
                chunk = await upstream.__anext__()
            except StopAsyncIteration:
                break
        if finish is None:  # an end without a finish reason is not an answer (fixture rule 16)
            raise StreamInterruptedError(
                f"{provider}: stream ended without a finish reason", provider=provider,
                partial_text="".join(texts),
            )
        if usage is None:  # the provider never reported usage: count it ourselves, marked estimated
            usage = service.estimate_usage(target, provider, model, gen, "".join(texts))
        if service.config.server.durable_replies:  # the final event only once the record is durable
            settled = True
            await _settle_parts(service, reservation, key, usage, provider, model, request_id, durable=True,
                                budget=budget)
        yield writer.finish(finish, usage)
    except Exception as exc:
        # a continued stream that could not be finished still books each upstream call
        parts = exc.usage_parts if isinstance(exc, StreamInterruptedError) else None
        if parts:
            usage = combine(parts)
        err = exc.error if isinstance(exc, GatewayError) else _stream_error(exc)
        status = err.status
        metrics.record_error(api, err.kind)
        logger.info("stream %s ended by upstream error: %s", request_id, type(exc).__name__)
        yield stream_error_frame(api, err)
    finally:
        metrics.in_flight -= 1
        with contextlib.suppress(BaseException):
            await upstream.aclose()  # type: ignore[attr-defined]
        if not settled:
            if usage is None and texts:
                usage = service.estimate_usage(target, provider, model, gen, "".join(texts))
            await _settle_parts(service, reservation, key, usage, provider, model, request_id, budget=budget)
        metrics.record_request(api, target.name, provider, status)
        metrics.latency.observe((api, "true"), time.perf_counter() - started)


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
