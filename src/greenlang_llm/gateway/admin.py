"""Read-only views of money and health: the admin API and a tenant's own ``/v1/usage``.

The admin key (from the env var named by ``[server] admin_key_env``) sees every
tenant; a tenant key on an admin endpoint gets 403 and an unknown key 401, so a
leaked tenant key never exposes another tenant's spend. ``/v1/usage`` answers
the same summary restricted to the caller's own tenant, whatever ``tenant`` it
asks for. Ledger queries are synchronous and may scan many rows, so they run in
a worker thread rather than on the event loop. Admin errors use the OpenAI
error shape (the admin API is ours, and one shape is simpler for clients).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .errors import OPENAI, ApiError, bad_request, error_response, forbidden
from .handler import authenticate
from .keys import VirtualKey
from .service import GatewayError, GatewayService, new_request_id

__all__ = ["budget_status", "costs_summary", "costs_timeseries", "providers_status", "usage"]

_GRANULARITIES = ("hourly", "daily", "monthly")


def _json(data: Any, request_id: str, status: int = 200) -> Response:
    return Response(
        orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status,
        {"x-request-id": request_id},
        media_type="application/json",
    )


def _parse_when(request: Request, name: str, end_of_day: bool = False) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else moment
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise GatewayError(
            bad_request(f"{name}: expected an ISO 8601 date or time, got {raw!r}", name)
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fields(obj: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "_asdict"):
        return dict(obj._asdict())
    return dict(vars(obj))


async def _guarded(request: Request, handler: Any, *, admin: bool) -> Response:
    """Auth (admin or tenant), then the handler; every refusal in the API's error shape."""
    request_id = new_request_id()
    service: GatewayService = request.app.state.service
    try:
        key = authenticate(service, request)
        if admin and not key.is_admin:
            raise GatewayError(forbidden("This endpoint needs the admin key."))
        data = await handler(service, key, request)
    except GatewayError as exc:
        service.metrics.record_error("admin", exc.error.kind)
        return error_response(OPENAI, exc.error, request_id)
    except (KeyError, ValueError) as exc:
        service.metrics.record_error("admin", "invalid_request")
        return error_response(OPENAI, bad_request(str(exc).strip("'\"")), request_id)
    if isinstance(data, Response):
        data.headers["x-request-id"] = request_id
        return data
    return _json(data, request_id)


async def _summary(service: GatewayService, tenant: str | None, request: Request) -> dict[str, Any]:
    start = _parse_when(request, "start")
    end = _parse_when(request, "end", end_of_day=True)
    summary = await asyncio.to_thread(service.tracker.get_summary, start, end, tenant)
    return _fields(summary)


async def costs_summary(request: Request) -> Response:
    async def run(service: GatewayService, key: VirtualKey, req: Request) -> Any:
        return await _summary(service, req.query_params.get("tenant") or None, req)

    return await _guarded(request, run, admin=True)


async def usage(request: Request) -> Response:
    """A tenant's own costs; the admin key may name any tenant (or none for all)."""

    async def run(service: GatewayService, key: VirtualKey, req: Request) -> Any:
        tenant = (req.query_params.get("tenant") or None) if key.is_admin else key.tenant
        data = await _summary(service, tenant, req)
        data["tenant"] = tenant
        return data

    return await _guarded(request, run, admin=False)


async def costs_timeseries(request: Request) -> Response:
    async def run(service: GatewayService, key: VirtualKey, req: Request) -> Any:
        granularity = req.query_params.get("granularity", "daily")
        if granularity not in _GRANULARITIES:
            raise GatewayError(bad_request("granularity: must be hourly, daily or monthly", "granularity"))
        fmt = req.query_params.get("format", "json")
        if fmt not in ("json", "csv"):
            raise GatewayError(bad_request("format: must be json or csv", "format"))
        end = _parse_when(req, "end", end_of_day=True) or datetime.now(UTC)
        start = _parse_when(req, "start") or end - timedelta(days=30)
        if start > end:
            raise GatewayError(bad_request("start: must not be after end", "start"))
        if granularity == "hourly" and end - start > timedelta(days=93):
            raise GatewayError(bad_request("hourly series are limited to 93 days", "granularity"))
        tenant = req.query_params.get("tenant") or None
        series = await asyncio.to_thread(service.tracker.get_time_series, start, end, granularity, tenant)
        rows = [(moment.isoformat(), float(cost)) for moment, cost in series]
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["timestamp", "total_cost_usd"])
            writer.writerows(rows)
            return Response(buf.getvalue(), 200, media_type="text/csv")
        return {
            "granularity": granularity,
            "tenant": tenant,
            "data": [{"timestamp": t, "total_cost_usd": c} for t, c in rows],
        }

    return await _guarded(request, run, admin=True)


async def budget_status(request: Request) -> Response:
    async def run(service: GatewayService, key: VirtualKey, req: Request) -> Any:
        tenant = req.path_params["tenant"]
        try:
            status = await asyncio.to_thread(service.tracker.check_budget, tenant)
        except KeyError:
            raise GatewayError(
                ApiError(
                    404,
                    f"No budget is set for tenant '{tenant}'.",
                    "invalid_request_error",
                    "budget_not_found",
                    "not_found_error",
                    kind="not_found",
                )
            ) from None
        data = _fields(status)
        data["tenant"] = tenant
        return data

    return await _guarded(request, run, admin=True)


async def providers_status(request: Request) -> Response:
    """Breaker state and counters of every provider, per route (each route has its own router)."""

    async def run(service: GatewayService, key: VirtualKey, req: Request) -> Any:
        return {name: target.router.get_metrics() for name, target in service.targets.items()}

    return await _guarded(request, run, admin=True)
