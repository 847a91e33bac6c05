"""The Starlette application: routes, start-up and graceful shutdown.

``create_app(config)`` builds everything eagerly (providers, routers, the cost
tracker), so a broken ledger URL fails at start, not at the first request.
Plain ``Route`` endpoints and no middleware keep the per-request overhead
small; the only safety net is the catch-all error handler, which still answers
in the caller's API shape (a test asserts it is never reached).

Shutdown: uvicorn stops accepting connections and waits for in-flight requests
(streams included), then the lifespan closes the service, which waits for
every pending ledger write before closing providers and the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import admin
from .config import GatewayConfig
from .errors import ANTHROPIC, OPENAI, ApiError, error_response
from .handler import authenticate
from .openapi import OPENAPI_SPEC
from .routes_anthropic import messages
from .routes_openai import chat_completions
from .service import GatewayError, GatewayService, new_request_id

if TYPE_CHECKING:
    from ..cost_tracker import CostTracker
    from ..providers.base_provider import BaseLLMProvider

__all__ = ["create_app"]

logger = logging.getLogger(__name__)
_HEALTH_TIMEOUT = 5.0


def _api_for(request: Request) -> str:
    return ANTHROPIC if request.url.path.startswith("/v1/messages") else OPENAI


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def ready(request: Request) -> Response:
    """200 when every route has at least one healthy provider, else 503; per-provider detail."""
    service: GatewayService = request.app.state.service

    async def check(provider: BaseLLMProvider) -> dict[str, Any]:
        try:
            h = await asyncio.wait_for(provider.health_check(), _HEALTH_TIMEOUT)
        except Exception as exc:
            return {"healthy": False, "latency_ms": None, "error": type(exc).__name__}
        return {"healthy": h.is_healthy, "latency_ms": h.latency_ms, "error": h.last_error}

    names = list(service.providers)
    results = await asyncio.gather(*(check(service.providers[n]) for n in names))
    detail = dict(zip(names, results, strict=True))
    routes = {
        name: any(detail[m]["healthy"] for m, _ in target.members)
        for name, target in service.targets.items()
        if target.is_route
    }
    ok = all(routes.values()) if routes else any(r["healthy"] for r in results)
    body: dict[str, Any] = {"status": "ready" if ok else "unavailable", "routes": routes, "providers": detail}
    if service.shared is not None:  # a replica: say whether Redis is shared, rebuilding or unreachable
        body["shared_state"] = service.shared.status()
    return Response(orjson.dumps(body), 200 if ok else 503, media_type="application/json")


async def models(request: Request) -> Response:
    """The names this key may use as ``model``; Anthropic's list shape if it sent ``anthropic-version``."""
    service: GatewayService = request.app.state.service
    api = ANTHROPIC if "anthropic-version" in request.headers else OPENAI
    request_id = new_request_id()
    try:
        key = authenticate(service, request)
    except GatewayError as exc:
        return error_response(api, exc.error, request_id)
    names = service.visible_models(key) if not key.is_admin else list(service.targets)
    if api == ANTHROPIC:
        from ..wire import anthropic as wire_anthropic

        body = wire_anthropic.render_models(names)
    else:
        from ..wire import openai as wire_openai

        body = wire_openai.render_models(names, owned_by="greenlang")
    return Response(orjson.dumps(body), headers={"x-request-id": request_id}, media_type="application/json")


async def metrics(request: Request) -> Response:
    service: GatewayService = request.app.state.service
    text = service.metrics.render(service.breaker_states(), service.budget_rows())
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


async def openapi(request: Request) -> Response:
    return Response(orjson.dumps(OPENAPI_SPEC), media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status == 404:
        err = ApiError(
            404,
            f"Unknown path {request.url.path}.",
            "invalid_request_error",
            "unknown_url",
            "not_found_error",
            kind="unknown_path",
        )
    elif status == 405:
        err = ApiError(
            405,
            f"Method {request.method} is not allowed on {request.url.path}.",
            "invalid_request_error",
            "method_not_allowed",
            "invalid_request_error",
            kind="method_not_allowed",
        )
    else:
        err = ApiError(status, str(exc.detail), kind="http_error")
    return error_response(_api_for(request), err, new_request_id(), dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s", request.url.path, exc_info=exc)
    err = ApiError(500, "Internal gateway error.", "server_error", None, "api_error", kind="internal")
    return error_response(_api_for(request), err, new_request_id())


def _webhook_hook(url: str, session_box: dict[str, Any], loop: asyncio.AbstractEventLoop) -> Any:
    """An alert callback that POSTs JSON to ``url``; callable from any thread, never blocks it."""

    async def post(payload: dict[str, Any]) -> None:
        session = session_box.get("session")
        if session is None:
            return
        try:
            async with session.post(
                url, data=orjson.dumps(payload), headers={"content-type": "application/json"}
            ) as resp:
                await resp.read()
                if resp.status >= 400:
                    logger.warning("budget webhook answered HTTP %s", resp.status)
        except Exception as exc:
            logger.warning("budget webhook failed: %s", type(exc).__name__)

    def hook(tenant_id: str, threshold: float, current_cost: float) -> None:
        payload = {
            "event": "budget_alert",
            "tenant": tenant_id,
            "threshold": threshold,
            "current_cost_usd": current_cost,
            "timestamp": datetime.now(UTC).isoformat(),
        }

        def schedule() -> None:
            task = loop.create_task(post(payload))
            session_box.setdefault("tasks", set()).add(task)
            task.add_done_callback(session_box["tasks"].discard)

        loop.call_soon_threadsafe(schedule)

    return hook


def create_app(
    config: GatewayConfig,
    *,
    providers: Mapping[str, BaseLLMProvider] | None = None,
    tracker: CostTracker | None = None,
    freeze_gc: bool = False,
) -> Starlette:
    """The gateway as an ASGI app; ``providers``/``tracker`` override the config's (tests, bench).

    ``freeze_gc``: after start-up warm-up, ``gc.freeze()`` the heap (process-wide; ``serve`` sets it).
    """
    service = GatewayService(config, providers=providers, tracker=tracker)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        box: dict[str, Any] = {}
        service.warm(freeze_gc)
        await service.start_health_monitoring()
        url = config.server.alert_webhook_url
        if url:
            import aiohttp

            box["session"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            service.add_alert_hook(_webhook_hook(url, box, asyncio.get_running_loop()))
        try:
            yield
        finally:
            await service.close(config.server.shutdown_timeout)
            tasks = list(box.get("tasks", ()))
            if tasks:
                await asyncio.wait(tasks, timeout=5)
            if "session" in box:
                await box["session"].close()

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/usage", admin.usage, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/admin/costs/summary", admin.costs_summary, methods=["GET"]),
        Route("/admin/costs/timeseries", admin.costs_timeseries, methods=["GET"]),
        Route("/admin/budgets/{tenant}", admin.budget_status, methods=["GET"]),
        Route("/admin/providers", admin.providers_status, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.service = service
    return app
