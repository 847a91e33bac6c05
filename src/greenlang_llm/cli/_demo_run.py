"""The demo's engine: upstreams, providers, routers, ledger and the workload loop.

Reads like the seed's "complete integration" example, made real: two routes
(premium, economy), each an ``LLMRouter`` over an Anthropic and an OpenAI
deployment of comparable models; one ``CostTracker`` with per-tenant budgets;
every answer tracked against its tenant and agent. Faults are switched on and
off through the simulator's run-time admin API (``POST /_sim/faults``) when the
scheduled request index is reached, so the run is repeatable for a seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from .._types import GenerationRequest, TokenUsage
from ..report import AlertEvent, BreakerEvent, FailoverEvent, RunInfo
from ._demo_observe import CURRENT_REQUEST, Observer, observed
from ._demo_workload import TENANTS, TIERS, DemoRequest, FaultStep, fault_schedule, plan_workload

__all__ = ["DemoSettings", "DemoState", "run_demo"]

DEMO_KEY = "sk-demo-simulator-not-a-real-key"
BUDGET_FACTORS = {"acme-corp": 0.55, "globex": 1.0, "initech": 1.15, "umbrella": 4.0}
"""Monthly limit as a multiple of the tenant's planned spend: acme overshoots, umbrella stays calm."""
THRESHOLDS = (0.5, 0.8, 0.9, 1.0)
_FLAT_RATE = {"premium": 1e-5, "economy": 1e-6}
"""USD per token, only if the price catalog fails."""
logger = logging.getLogger(__name__)
SIM_LATENCY = {  # model -> (latency_ms, jitter_ms, token_ms): the premium models are slower
    "claude-3-5-sonnet-20241022": (160, 140, 0.6),
    "gpt-4o": (130, 120, 0.5),
    "claude-3-haiku-20240307": (70, 60, 0.25),
    "gpt-4o-mini": (60, 50, 0.2),
}


@dataclass(frozen=True, slots=True)
class DemoSettings:
    requests: int
    seed: int
    strategy: str
    out_dir: Path
    live: bool = False
    concurrency: int = 16
    breaker_timeout: float = 2.5
    time_scale: float = 1.0
    """Multiplies the arrival schedule (tests use a smaller value)."""


@dataclass
class DemoState:
    """Live counters the terminal UI reads while the run goes on."""

    settings: DemoSettings
    observer: Observer = field(default_factory=Observer)
    routers: dict[str, Any] = field(default_factory=dict)
    labels: dict[tuple[str, str], str] = field(default_factory=dict)
    done: int = 0
    failed: int = 0
    streamed: int = 0
    spend_usd: float = 0.0
    failovers: list[FailoverEvent] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)
    faults: list[tuple[datetime, str]] = field(default_factory=list)
    active_faults: dict[str, str] = field(default_factory=dict)
    breaker_events: list[BreakerEvent] = field(default_factory=list)
    started_at: datetime | None = None
    _seen_transitions: dict[str, int] = field(default_factory=dict)

    def poll_breakers(self) -> None:
        """Turn new router breaker transitions into events (the routers keep the full list)."""
        for tier, router in self.routers.items():
            seen = self._seen_transitions.get(tier, 0)
            fresh = router.breaker_transitions[seen:]
            self._seen_transitions[tier] = seen + len(fresh)
            for name, t in fresh:
                label = f"{tier}/{name}"
                old, new = str(t.from_state.value), str(t.to_state.value)
                self.breaker_events.append(BreakerEvent(t.timestamp, label, old, new))
                style = {"open": "red", "half_open": "yellow", "closed": "green"}.get(new, "")
                self.observer.emit("breaker", f"breaker {label}: {old} → {new}", style, at=t.timestamp)


async def _post_json(url: str, payload: Any) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.post(url, json=payload) as resp:
        resp.raise_for_status()


class _Faults:
    """The fault schedule, applied through the simulator's admin endpoint."""

    _PATHS: ClassVar[dict[str, str]] = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}

    def __init__(self, admin_url: str | None, primary: str, steps: list[FaultStep]) -> None:
        self.admin_url = admin_url
        self.primary = primary
        self.by_index: dict[int, list[FaultStep]] = {}
        for step in steps:
            self.by_index.setdefault(step.at_index, []).append(step)
        self.rules: dict[str, dict[str, Any]] = {}

    def describe(self, step: FaultStep) -> str:
        vendor = "Anthropic" if self.primary == "anthropic" else "OpenAI"
        if step.fault == "outage":
            answer = "529 overloaded" if vendor == "Anthropic" else "503"
            return f"{vendor} outage: every call answers {answer}" if step.on else f"{vendor} outage over"
        if step.on:
            return f"{vendor} rate limiting: 70% of calls get 429 with retry-after 0.25 s"
        return f"{vendor} rate limiting lifted"

    def _rule(self, fault: str) -> dict[str, Any]:
        path = self._PATHS[self.primary]
        if fault == "outage":
            return {"kind": "overloaded", "path": path}
        return {"kind": "rate_limit", "path": path, "rate": 0.7, "retry_after": 0.25}

    async def apply(self, index: int, state: DemoState) -> None:
        for step in self.by_index.get(index, []):
            if step.on:
                self.rules[step.fault] = self._rule(step.fault)
            else:
                self.rules.pop(step.fault, None)
            text = self.describe(step)
            if self.admin_url is not None:
                await _post_json(self.admin_url, {"faults": list(self.rules.values())})
            now = datetime.now(UTC)
            state.faults.append((now, text))
            if step.on:
                state.active_faults[step.fault] = text
            else:
                state.active_faults.pop(step.fault, None)
            state.observer.emit("fault", text, "magenta", at=now)


@contextlib.asynccontextmanager
async def _upstreams(settings: DemoSettings) -> AsyncIterator[tuple[str | None, str | None, str | None]]:
    """(anthropic base URL, openai base URL, admin URL): the simulator's, or None for the real APIs."""
    if settings.live:
        yield None, None, None
        return
    from ..simulator import Simulator, SimulatorConfig

    models = {m: {"reply_tokens": 4096, "latency_ms": lat, "jitter_ms": jit, "token_ms": tok}
              for m, (lat, jit, tok) in SIM_LATENCY.items()}
    config = SimulatorConfig.from_dict({"seed": settings.seed, "models": models})
    async with Simulator(config) as sim:
        yield sim.anthropic_base_url, sim.openai_base_url, sim.base_url + "/_sim/faults"


def _build_routers(settings: DemoSettings, state: DemoState, anthropic_url: str | None,
                   openai_url: str | None) -> None:
    from .. import LLMRouter
    from ..providers import AnthropicProvider, OpenAIProvider

    common: dict[str, Any] = {"max_retries": 2, "base_delay": 0.1, "max_delay": 0.5, "timeout": 6.0}
    anthropic_key = None if settings.live else DEMO_KEY
    openai_key = None if settings.live else DEMO_KEY
    for tier in TIERS.values():
        router = LLMRouter(strategy=settings.strategy, health_check_interval=5.0,
                           circuit_breaker_threshold=5, circuit_breaker_timeout=settings.breaker_timeout,
                           max_failovers=1)
        if not settings.live or os.environ.get("ANTHROPIC_API_KEY"):
            label = f"{tier.name}/anthropic"
            router.register_provider("anthropic", observed(
                AnthropicProvider, state.observer, label, model_id=tier.anthropic_model,
                api_key=anthropic_key, base_url=anthropic_url, **common), priority=1)
            state.labels[(tier.name, "anthropic")] = tier.anthropic_model
        if not settings.live or os.environ.get("OPENAI_API_KEY"):
            label = f"{tier.name}/openai"
            router.register_provider("openai", observed(
                OpenAIProvider, state.observer, label, model_id=tier.openai_model,
                api_key=openai_key, base_url=openai_url, **common), priority=2)
            state.labels[(tier.name, "openai")] = tier.openai_model
        state.routers[tier.name] = router


def _planned_spend(plan: list[DemoRequest], state: DemoState) -> dict[str, float]:
    """Each tenant's cost if every request went to its route's first provider (worst case)."""
    spend = dict.fromkeys(TENANTS, 0.0)
    for req in plan:
        providers = state.routers[req.tier].providers
        first = next(iter(providers.values()))
        try:
            cost = float(first.estimate_cost(_request(req)))
        except Exception:  # the price catalog must not stop the demo: size by a rough rate
            logger.warning("estimate_cost failed for %s; sizing budgets by a flat rate", first.model_id,
                           exc_info=True)
            cost = (len(req.prompt) / 4 + req.max_tokens) * _FLAT_RATE[req.tier]
        spend[req.tenant] += cost
    return spend


def _request(req: DemoRequest) -> GenerationRequest:
    return GenerationRequest(prompt=req.prompt, system=req.system, max_tokens=req.max_tokens,
                             temperature=0.3, timeout=15.0)


async def _serve_one(req: DemoRequest, state: DemoState, tracker: Any, sem: asyncio.Semaphore) -> None:
    router = state.routers[req.tier]
    async with sem:
        token = CURRENT_REQUEST.set(req.index)
        try:
            provider, model, usage = await _call(router, _request(req), req.stream)
        except Exception as error:
            state.failed += 1
            state.observer.emit("info", f"request #{req.index} ({req.tenant}/{req.agent}) failed: "
                                        f"{type(error).__name__}", "red")
            return
        finally:
            CURRENT_REQUEST.reset(token)
            state.done += 1
    attempts = state.observer.attempts.get(req.index, [])
    if attempts:
        first, reason = attempts[0]
        state.failovers.append(FailoverEvent(datetime.now(UTC), req.tenant, req.agent, first,
                                             f"{req.tier}/{provider}", reason))
    if req.stream:
        state.streamed += 1
    state.spend_usd += usage.total_cost_usd
    await asyncio.to_thread(tracker.track_usage, provider=provider, tenant_id=req.tenant,
                            agent_id=req.agent, model_id=model, usage=usage, request_id=f"demo-{req.index}")


async def _call(router: Any, request: GenerationRequest, stream: bool) -> tuple[str, str, TokenUsage]:
    if not stream:
        response = await router.generate(request)
        return response.provider, response.model_id, response.usage
    provider = model = ""
    usage: TokenUsage | None = None
    async for chunk in router.stream(request):
        provider = chunk.provider or provider
        model = chunk.model_id or model
        usage = chunk.usage or usage
    if usage is None:
        raise RuntimeError("stream ended without usage")
    return provider, model, usage


def _fresh_ledger(out_dir: Path) -> Path:
    ledger = out_dir / "ledger.db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{ledger}{suffix}").unlink()
    return ledger


async def run_demo(settings: DemoSettings, state: DemoState) -> tuple[RunInfo, Any]:
    """Run the whole scenario; returns the run info and the (still open) tracker."""
    from ..cost_tracker import CostTracker

    plan = plan_workload(settings.requests, settings.seed)
    ledger = _fresh_ledger(settings.out_dir)
    tracker = CostTracker(storage=f"sqlite:///{ledger.resolve()}")
    mode = "live providers" if settings.live else "embedded simulator"
    run = RunInfo(title="greenlang-llm demo", mode=mode, strategy=settings.strategy, seed=settings.seed,
                  planned_requests=settings.requests)

    def on_alert(tenant: str, threshold: float, current: float) -> None:
        state.alerts.append(AlertEvent(datetime.now(UTC), tenant, threshold, current))
        style = "bold red" if threshold >= 1.0 else "yellow"
        text = f"budget alert: {tenant} reached {threshold:.0%} of its limit (${current:.4f})"
        state.observer.emit("alert", text, style)

    tracker.register_alert_callback(on_alert)
    try:
        async with _upstreams(settings) as (anthropic_url, openai_url, admin_url):
            _build_routers(settings, state, anthropic_url, openai_url)
            planned = _planned_spend(plan, state)
            for tenant, spend in planned.items():
                limit = round(max(spend, 0.0001) * BUDGET_FACTORS[tenant], 6)
                tracker.set_budget(tenant, monthly_limit_usd=limit, alert_thresholds=THRESHOLDS)
                run.limits[tenant] = limit
                run.thresholds[tenant] = THRESHOLDS
            primary = "openai" if settings.strategy == "least_cost" else "anthropic"
            schedule = [] if admin_url is None else fault_schedule(settings.requests)  # none on real APIs
            faults = _Faults(admin_url, primary, schedule)
            for router in state.routers.values():
                await router.start_health_monitoring()
            run.started_at = state.started_at = datetime.now(UTC)
            await _drive(plan, state, tracker, faults, settings)
            await _agent_turn(state, tracker)
            run.finished_at = datetime.now(UTC)
            state.poll_breakers()
            for router in state.routers.values():
                await router.close()
    except BaseException:
        tracker.close()
        raise
    run.failed_requests = state.failed
    run.streamed_requests = state.streamed
    run.breaker_events = list(state.breaker_events)
    run.failovers = list(state.failovers)
    run.alerts = list(state.alerts)
    run.faults = list(state.faults)
    run.latencies_ms = {_latency_label(k, state): v for k, v in state.observer.latencies_ms.items()}
    return run, tracker


async def _agent_turn(state: DemoState, tracker: Any) -> None:
    """After the workload: one agent turn with a tool call, on the economy route."""
    from ._demo_agent import run_agent_turn

    try:
        await run_agent_turn(state.routers["economy"], tracker, state.observer)
    except Exception as error:  # the turn is a showcase: it must not fail the demo's report
        state.observer.emit("info", f"agent turn failed: {type(error).__name__}: {error}", "red")


def _latency_label(label: str, state: DemoState) -> str:
    """``claude-3-5-sonnet (anthropic)``: the model without its date suffix, and the vendor."""
    tier, _, name = label.partition("/")
    model = re.sub(r"-\d{8}$", "", state.labels.get((tier, name), tier))
    return f"{model} ({name})"


async def _drive(plan: list[DemoRequest], state: DemoState, tracker: Any, faults: _Faults,
                 settings: DemoSettings) -> None:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(settings.concurrency)
    start = loop.time()
    tasks: list[asyncio.Task[None]] = []

    async def poll() -> None:
        while True:
            state.poll_breakers()
            await asyncio.sleep(0.05)

    poller = asyncio.create_task(poll())
    for req in plan:
        delay = start + req.arrival_s * settings.time_scale - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await faults.apply(req.index, state)
        tasks.append(asyncio.create_task(_serve_one(req, state, tracker, sem)))
    try:
        await asyncio.gather(*tasks)
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        state.poll_breakers()


def check_out_dir(out_dir: Path) -> None:
    """Create ``out_dir`` and prove it is writable; raises OSError otherwise."""
    out_dir.mkdir(parents=True, exist_ok=True)
    probe = out_dir / ".greenlang-write-test"
    probe.write_text("ok")
    probe.unlink()
    if not os.access(out_dir, os.W_OK):
        raise PermissionError(f"{out_dir} is not writable")
    _ = shutil.disk_usage(out_dir)
