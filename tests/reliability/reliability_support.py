"""Shared pieces of the reliability suite: scale, the chaos fault mix, stacks, subprocess gateways.

Imported as ``reliability_support`` (conftest.py puts this directory on ``sys.path``).

Every count goes through :func:`scaled`: CI runs the reduced counts, ``RELIABILITY_SOAK=1``
(or ``python tests/reliability/soak.py``) runs the issue's full ones. The seeds are fixed, so
a run replays the same fault draws for the same request order; with 50 requests in flight the
order that reaches the simulator can vary, which is why every assertion is an invariant that
must hold for *any* draw, never a count copied from one run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from greenlang_llm.simulator.faults import FaultRule

SOAK = os.environ.get("RELIABILITY_SOAK", "") not in ("", "0")
SEED = int(os.environ.get("RELIABILITY_SEED", "20261128"))


def scaled(ci: int, soak: int) -> int:
    """``ci`` in CI, ``soak`` with RELIABILITY_SOAK=1."""
    return soak if SOAK else ci


# -- the three upstream models ---------------------------------------------------------------
# Two faulted (one per API, so both wire paths and both providers see every fault), one healthy.
FAULTY_ANTHROPIC = "claude-3-5-haiku-20241022"
FAULTY_OPENAI = "gpt-4o-mini"
HEALTHY = "claude-3-haiku-20240307"
FAULTY = (FAULTY_ANTHROPIC, FAULTY_OPENAI)

PROVIDER_KEY = "sk-test-canary-provider-7d41c9"
"""The provider key every test sends upstream: a canary that must never surface anywhere."""

# Share of requests to a faulted model that meet each fault (30% in all for plain requests).
PLAIN_MIX: tuple[tuple[str, float, dict[str, Any]], ...] = (
    ("http_500", 0.06, {}),
    ("http_503", 0.05, {}),
    ("overloaded", 0.05, {}),
    ("rate_limit", 0.05, {"retry_after": 0.2}),
    ("slow", 0.04, {"delay": 30.0}),  # far past the provider timeout
    ("reset", 0.05, {}),
)
# Streams meet the same mix plus stream faults: before the first token (after=0: must fail over
# unseen) and after it (after=3, or the whole reply without its terminal event: must surface).
STREAM_MIX: tuple[tuple[str, float, dict[str, Any]], ...] = (
    ("stream_cut", 0.04, {"after": 0}),
    ("stream_error", 0.02, {"after": 0}),
    ("invalid_json", 0.02, {"after": 0}),
    ("stream_cut", 0.03, {"after": 3}),
    ("stall", 0.02, {"after": 3, "delay": 30.0}),  # silent past the provider's idle timeout
    ("no_terminal", 0.02, {}),
)
MID_STREAM_KINDS = ("stream_cut", "stall", "no_terminal")


def chaos_rules(models: Sequence[str] = FAULTY) -> list[FaultRule]:
    """Rules so that each fault fires with its *unconditional* share of a model's requests.

    The injector tries rules in order and stops at the first whose draw is below its rate, so
    rule ``i`` gets ``p_i / (1 - sum of earlier p)``. Stream-only kinds do not match plain
    requests, so plain requests see exactly the 30% of PLAIN_MIX.
    """
    rules: list[FaultRule] = []
    for model in models:
        used = 0.0
        for kind, share, params in (*PLAIN_MIX, *STREAM_MIX):
            rules.append(FaultRule(kind, rate=share / (1.0 - used), model=model, **params))
            used += share
    return rules


# -- loopback helpers ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_app(app: Any, *, debug_logs: bool = False) -> AsyncIterator[str]:
    """Run an ASGI app under uvicorn (httptools) on a free loopback port; yields its base URL.

    ``debug_logs``: uvicorn logs at DEBUG with its access log, through the root logger (no
    handlers of its own), so a test capturing the root logger sees every line it writes.
    """
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, loop="asyncio", http="httptools", lifespan="on",
        log_level="debug" if debug_logs else "warning", access_log=debug_logs, timeout_graceful_shutdown=2,
        log_config=None if debug_logs else uvicorn.config.LOGGING_CONFIG,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def read_rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# -- gateway configs -------------------------------------------------------------------------

TENANT_A_KEY = "sk-gl-canary-tenant-a-93be0f"
"""A virtual key that is also a canary: it must never be echoed, logged or exported."""
TENANT_B_KEY = "sk-gl-tenant-b-55aa01"
ADMIN_KEY = "sk-gl-admin-reliability-1c2d"
GATEWAY_ENV = {
    "TENANT_A_KEY": TENANT_A_KEY,
    "TENANT_B_KEY": TENANT_B_KEY,
    "GL_ADMIN_KEY": ADMIN_KEY,
    "REL_PROVIDER_KEY": PROVIDER_KEY,
}


def gateway_config(
    anthropic_url: str,
    openai_url: str,
    *,
    database_url: str = "sqlite:///:memory:",
    timeout: float = 1.0,
    max_retries: int = 1,
    budgets: Sequence[Mapping[str, Any]] = (),
    healthy_model: str = HEALTHY,
    **server: Any,
) -> dict[str, Any]:
    """Three providers (two faulted models, one healthy) on one ``default`` route, priority order.

    ``server``: more ``[server]`` settings (e.g. ``durable_replies=True``).
    """

    def provider(name: str, kind: str, model: str, url: str, priority: int) -> dict[str, Any]:
        return {
            "name": name, "type": kind, "model_id": model, "base_url": url, "priority": priority,
            "max_retries": max_retries, "timeout": timeout, "api_key_env": "REL_PROVIDER_KEY",
        }

    return {
        "server": {"database_url": database_url, "admin_key_env": "GL_ADMIN_KEY", "shutdown_timeout": 5.0,
                   **server},
        "providers": [
            provider("flaky-claude", "anthropic", FAULTY_ANTHROPIC, anthropic_url, 1),
            provider("flaky-gpt", "openai", FAULTY_OPENAI, openai_url, 2),
            provider("steady", "anthropic", healthy_model, anthropic_url, 3),
        ],
        "routes": [
            {"name": "default", "strategy": "priority", "providers": ["flaky-claude", "flaky-gpt", "steady"]},
        ],
        "keys": [
            {"key_env": "TENANT_A_KEY", "tenant": "tenant-a", "agent": "web"},
            {"key_env": "TENANT_B_KEY", "tenant": "tenant-b", "agent": "batch"},
        ],
        "budgets": list(budgets),
    }


def to_toml(data: Mapping[str, Any]) -> str:
    """Just enough TOML for the configs above (tables, arrays of tables, scalars, flat lists)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(type(v))

    lines: list[str] = []
    for section, body in data.items():
        if isinstance(body, Mapping):
            lines.append(f"[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in body.items()]
        else:
            for item in body:
                lines.append(f"[[{section}]]")
                lines += [f"{k} = {value(v)}" for k, v in item.items()]
        lines.append("")
    return "\n".join(lines)


class GatewayProcess:
    """``greenlang-llm serve`` in a subprocess on a free port (its own process group)."""

    def __init__(
        self, config: Mapping[str, Any], workdir: Path, env: Mapping[str, str] = GATEWAY_ENV
    ) -> None:
        self.path = workdir / "gateway.toml"
        self.path.write_text(to_toml(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.log = workdir / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "greenlang_llm", "serve", "--config", str(self.path),
                 "--port", str(self.port)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gateway exited at start-up:\n{self.log.read_text()}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL, no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def gateway_process(config: Mapping[str, Any], workdir: Path) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(config, workdir)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()
