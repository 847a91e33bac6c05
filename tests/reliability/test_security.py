"""Key hygiene and tenant isolation.

A canary provider key and a canary virtual key go through every path we can make the gateway
and the library take — success, streams, failover, upstream errors whose bodies *echo the key
back* (as a misbehaving proxy might), auth failures, admin and metrics endpoints — with every
logger at DEBUG (uvicorn's access log included). Neither canary may appear in any log line,
response body or header, the metrics output, or the text of any exception (message, repr,
traceback with its chain). Tenant A's key cannot read tenant B's usage or budget; tenant keys
cannot use admin endpoints; the admin key cannot call models; the gateway binds 127.0.0.1
unless told otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from reliability_support import (
    ADMIN_KEY,
    GATEWAY_ENV,
    HEALTHY,
    PROVIDER_KEY,
    SEED,
    TENANT_A_KEY,
    TENANT_B_KEY,
    GatewayProcess,
    serve_app,
)

from greenlang_llm import GenerationRequest, LLMRouter
from greenlang_llm._errors import ProviderError
from greenlang_llm.cli import main as cli_main
from greenlang_llm.cost_tracker import CostTracker
from greenlang_llm.gateway.app import create_app
from greenlang_llm.gateway.config import parse_config
from greenlang_llm.providers import AnthropicProvider, OpenAIProvider
from greenlang_llm.simulator import Simulator, SimulatorConfig

CANARIES = (PROVIDER_KEY, TENANT_A_KEY, PROVIDER_KEY.removeprefix("sk-"), TENANT_A_KEY.removeprefix("sk-"))


def assert_clean(text: str, where: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"a canary key leaked into {where}"


class Capture(logging.Handler):
    """Every record of every logger at DEBUG, formatted (with its traceback, if any)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self._saved: dict[str, tuple[logging.Logger, int, bool, bool]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def rewire(self) -> None:
        """Every logger to DEBUG and propagating to the root (again: uvicorn's start-up
        dictConfig makes its loggers stop propagating)."""
        names = [*logging.root.manager.loggerDict, "uvicorn", "uvicorn.error", "uvicorn.access", "aiohttp",
                 "asyncio", "greenlang_llm"]
        for name in names:
            logger = logging.getLogger(name)
            self._saved.setdefault(name, (logger, logger.level, logger.propagate, logger.disabled))
            logger.setLevel(logging.DEBUG)
            logger.propagate = True
            logger.disabled = False

    def restore(self) -> None:
        for logger, level, propagate, disabled in self._saved.values():
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


@contextlib.contextmanager
def all_logs_at_debug() -> Iterator[Capture]:
    capture = Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    capture.rewire()
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
        capture.restore()


@contextlib.asynccontextmanager
async def echo_upstream() -> AsyncIterator[str]:
    """An upstream that puts the credentials it received into its error bodies and headers.

    Prefix ``/e500`` answers 500, ``/e401`` answers 401 (both APIs, health probes too).
    """

    async def handle(request: web.Request) -> web.Response:
        got = request.headers.get("x-api-key") or request.headers.get("authorization", "")
        status = 401 if request.path.startswith("/e401") else 500
        body = {"type": "error", "error": {"type": "api_error", "message": f"rejected credentials {got}"}}
        return web.json_response(body, status=status, headers={"x-echo-key": got})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _config(sim: Simulator, echo: str, database_url: str = "sqlite:///:memory:") -> dict[str, Any]:
    def provider(name: str, kind: str, model: str, url: str, priority: int) -> dict[str, Any]:
        return {"name": name, "type": kind, "model_id": model, "base_url": url, "priority": priority,
                "max_retries": 1, "timeout": 5.0, "api_key_env": "REL_PROVIDER_KEY"}

    return {
        "server": {"database_url": database_url, "admin_key_env": "GL_ADMIN_KEY"},
        "providers": [
            provider("claude", "anthropic", HEALTHY, sim.anthropic_base_url, 1),
            provider("gpt", "openai", "gpt-4o-mini", sim.openai_base_url, 2),
            provider("echo500", "anthropic", "claude-3-5-haiku-20241022", echo + "/e500", 3),
            provider("echo401", "openai", "gpt-4o", echo + "/e401/v1", 4),
        ],
        "routes": [
            {"name": "default", "strategy": "priority", "providers": ["claude", "gpt"]},
            {"name": "broken", "strategy": "priority", "providers": ["echo500", "echo401"]},
            {"name": "failover", "strategy": "priority", "providers": ["echo500", "gpt"]},
        ],
        "keys": [
            {"key_env": "TENANT_A_KEY", "tenant": "tenant-a", "agent": "web"},
            {"key_env": "TENANT_B_KEY", "tenant": "tenant-b", "agent": "batch"},
        ],
        "budgets": [
            {"tenant": "tenant-a", "monthly_limit_usd": 50.0, "hard_limit": True},
            {"tenant": "tenant-b", "monthly_limit_usd": 7.0},
        ],
    }


def _openai_headers(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _anthropic_headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": "2023-06-01"}


async def test_canary_keys_never_leak_through_the_gateway() -> None:
    seen: list[tuple[str, str]] = []  # (where, text) of everything a client could read
    with all_logs_at_debug() as logs:
        async with Simulator(SimulatorConfig(seed=SEED)) as sim, echo_upstream() as echo:
            app = create_app(parse_config(_config(sim, echo), GATEWAY_ENV),
                             tracker=CostTracker(storage="sqlite:///:memory:"))
            async with serve_app(app, debug_logs=True) as url, aiohttp.ClientSession() as session:
                logs.rewire()

                async def call(method: str, path: str, headers: dict[str, str], body: Any = None) -> int:
                    async with session.request(method, url + path, json=body, headers=headers) as resp:
                        text = await resp.text()
                        seen.append((f"{method} {path} body", text))
                        seen.append((f"{method} {path} headers", repr(dict(resp.headers))))
                        return resp.status

                chat = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}
                for route, want in (("default", 200), ("failover", 200), ("broken", 502)):
                    for stream in (False, True):
                        body = {"model": route, "stream": stream, **chat}
                        status = await call("POST", "/v1/chat/completions", _openai_headers(TENANT_A_KEY),
                                            body)
                        assert status == want
                        status = await call("POST", "/v1/messages", _anthropic_headers(TENANT_A_KEY), body)
                        assert status == want
                # bad keys: near-canary, the provider key used as a virtual key, none at all
                assert await call("POST", "/v1/chat/completions", _openai_headers(PROVIDER_KEY),
                                  {"model": "default", **chat}) == 401
                assert await call("POST", "/v1/messages", _anthropic_headers(TENANT_A_KEY + "x"),
                                  {"model": "default", **chat}) == 401
                assert await call("POST", "/v1/chat/completions", {}, {"model": "default", **chat}) == 401
                for path in ("/v1/models", "/v1/usage", "/health", "/health/ready", "/metrics",
                             "/openapi.json"):
                    await call("GET", path, _openai_headers(TENANT_A_KEY))
                for path in ("/admin/costs/summary", "/admin/costs/timeseries?format=csv",
                             "/admin/budgets/tenant-a", "/admin/providers"):
                    assert await call("GET", path, _openai_headers(ADMIN_KEY)) == 200
                    assert await call("GET", path, _openai_headers(TENANT_A_KEY)) == 403
            await app.state.service.drain()
    assert logs.lines, "the capture saw nothing: logging is not wired as assumed"
    assert any("uvicorn" in line for line in logs.lines)
    everything = [*logs.lines, *(text for _, text in seen)]
    assert any("[redacted]" in text for text in everything), "the echoed key never surfaced: test is blind"
    for where, text in seen:
        assert_clean(text, where)
    for line in logs.lines:
        assert_clean(line, f"log line {line[:80]!r}")


async def test_canary_keys_never_leak_into_library_exceptions() -> None:
    with all_logs_at_debug() as logs:
        async with echo_upstream() as echo:
            router = LLMRouter(max_failovers=1)
            router.register_provider("a", AnthropicProvider("claude-3-5-haiku-20241022", api_key=PROVIDER_KEY,
                                                            base_url=echo + "/e500", max_retries=1,
                                                            base_delay=0.01), priority=1)
            router.register_provider("b", OpenAIProvider("gpt-4o", api_key=PROVIDER_KEY,
                                                         base_url=echo + "/e401/v1", max_retries=1,
                                                         base_delay=0.01), priority=2)
            texts: list[str] = []
            async with router:
                request = GenerationRequest(prompt="hi", max_tokens=8)
                for call in (router.generate(request), _drain(router.stream(request))):
                    with pytest.raises(ProviderError) as info:
                        await call
                    exc = info.value
                    texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
                    texts += [f"{name}: {e!s} {e!r}" for name, e in getattr(exc, "errors", [])]
                health = await router.health_check_all()
                texts += [repr(h) for h in health.values()]
                texts += [repr(p) for p in router.providers.values()]
                texts.append(repr(router.get_metrics()))
    assert any("[redacted]" in text for text in texts), "the echoed key never reached an error: test is blind"
    for text in texts:
        assert_clean(text, "exception text")
    for line in logs.lines:
        assert_clean(line, f"log line {line[:80]!r}")


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def test_a_tenant_key_reads_only_its_own_tenant_and_no_admin_endpoint(tmp_path: Path) -> None:
    async with Simulator(SimulatorConfig(seed=SEED)) as sim, echo_upstream() as echo:
        app = create_app(parse_config(_config(sim, echo, f"sqlite:///{tmp_path}/l.db"), GATEWAY_ENV))
        async with serve_app(app) as url, aiohttp.ClientSession() as session:
            chat = {"model": "default", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
            for _ in range(3):  # only tenant B spends
                async with session.post(url + "/v1/chat/completions", json=chat,
                                        headers=_openai_headers(TENANT_B_KEY)) as resp:
                    assert resp.status == 200
            await app.state.service.drain()

            async def get(path: str, key: str) -> tuple[int, Any]:
                async with session.get(url + path, headers=_openai_headers(key)) as resp:
                    return resp.status, await resp.json()

            status, mine = await get("/v1/usage?tenant=tenant-b", TENANT_A_KEY)
            assert status == 200
            assert mine["tenant"] == "tenant-a"  # asking for B answers A's own usage
            assert mine["total_requests"] == 0
            assert mine["total_cost_usd"] == 0
            assert "tenant-b" not in str(mine)
            status, theirs = await get("/v1/usage", TENANT_B_KEY)
            assert theirs["total_requests"] == 3
            for path in ("/admin/budgets/tenant-b", "/admin/budgets/tenant-a",
                         "/admin/costs/summary?tenant=tenant-b", "/admin/costs/timeseries?tenant=tenant-b",
                         "/admin/providers"):
                status, body = await get(path, TENANT_A_KEY)
                assert status == 403, path
                assert "tenant-b" not in str(body).replace("/admin/budgets/tenant-b", "")
                assert "7.0" not in str(body)
            status, budget = await get("/admin/budgets/tenant-b", ADMIN_KEY)
            assert status == 200
            assert budget["limit_usd"] == 7.0
            async with session.post(url + "/v1/chat/completions", json=chat,
                                    headers=_openai_headers(ADMIN_KEY)) as resp:
                assert resp.status == 403  # the admin key cannot spend


def _listening_addresses(pid: int, port: int) -> set[str]:
    """Local addresses of LISTEN sockets on ``port`` in the process's network namespace."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@pytest.mark.slow
def test_the_gateway_binds_loopback_unless_told_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {"providers": [{"name": "a", "type": "openai", "model_id": "gpt-4o-mini",
                           "base_url": "http://127.0.0.1:9/v1", "api_key_env": "REL_PROVIDER_KEY"}]}
    assert parse_config(data, GATEWAY_ENV).server.host == "127.0.0.1"
    gw = GatewayProcess(data, tmp_path)
    for name, value in GATEWAY_ENV.items():
        monkeypatch.setenv(name, value)
    assert cli_main(["serve", "--config", str(gw.path), "--check"]) == 0
    assert "would listen on 127.0.0.1:4000" in capsys.readouterr().out
    gw.start()
    try:
        assert _listening_addresses(gw.pid, gw.port) == {"0100007F"}  # 127.0.0.1, and nothing else
    finally:
        gw.stop()
    assert_clean(gw.log.read_text(), "the gateway's own output")
