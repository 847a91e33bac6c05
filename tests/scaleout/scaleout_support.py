"""Several real gateway processes sharing one PostgreSQL ledger and one Redis.

Imported as ``scaleout_support`` (conftest.py puts this directory on ``sys.path``).
Each replica is ``python -m greenlang_llm serve --config ...`` in its own process group
on a free loopback port; the simulator runs in the test's event loop. Every test gets
a fresh PostgreSQL schema and its own Redis key prefix, both removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_BASE = "redis://127.0.0.1:6379"
PROVIDER_KEY = "sk-test-canary-scaleout"
TENANT_KEY = "sk-gl-scaleout-tenant"
LIMITED_KEY = "sk-gl-scaleout-limited"
ENV = {"SCALE_PROVIDER_KEY": PROVIDER_KEY, "SCALE_TENANT_KEY": TENANT_KEY, "SCALE_LIMITED_KEY": LIMITED_KEY}
MODEL = "gpt-4o"  # $10 / MTok output: max_tokens=1500 makes a worst case of about $0.015
SLOW_MODEL = "gpt-4o-2024-08-06"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_toml(
    *,
    port: int,
    database_url: str,
    redis_url: str,
    prefix: str,
    openai_url: str,
    budget_usd: float | None = None,
    ttl_s: float = 600.0,
    rpm: int | None = None,
) -> str:
    def provider(name: str, model: str) -> str:
        return (
            f'[[providers]]\nname = "{name}"\ntype = "openai"\nmodel_id = "{model}"\n'
            f'base_url = "{openai_url}"\napi_key_env = "SCALE_PROVIDER_KEY"\n'
            "max_retries = 0\ntimeout = 60.0\n"
        )

    text = (
        f'[server]\nport = {port}\ndatabase_url = "{database_url}"\nredis_url = "{redis_url}"\n'
        f'redis_prefix = "{prefix}"\nreservation_ttl_s = {ttl_s}\nshutdown_timeout = 10.0\n'
        + provider("gpt", MODEL)
        + provider("slow-gpt", SLOW_MODEL)
        + '[[routes]]\nname = "chat"\nproviders = ["gpt"]\n'
        + '[[routes]]\nname = "slow"\nproviders = ["slow-gpt"]\n'
        + '[[keys]]\nkey_env = "SCALE_TENANT_KEY"\ntenant = "acme"\nagent = "web"\n'
        + '[[keys]]\nkey_env = "SCALE_LIMITED_KEY"\ntenant = "limited"\nagent = "bot"\n'
        + (f"rpm = {rpm}\n" if rpm else "")
    )
    if budget_usd is not None:
        text += f'[[budgets]]\ntenant = "acme"\nmonthly_limit_usd = {budget_usd}\nhard_limit = true\n'
    return text


class Replica:
    """One ``greenlang-llm serve`` process."""

    def __init__(self, name: str, workdir: Path, **config: Any) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / f"{name}.toml"
        self.config.write_text(gateway_toml(port=self.port, **config))
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "greenlang_llm", "serve", "--config", str(self.config)],
                env={**os.environ, **ENV}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    async def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 60.0
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at start-up:\n{self.log.read_text()}") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} did not start:\n{self.log.read_text()}") from None
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM: uvicorn drains, the service flushes every pending ledger write."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def make_replicas(n: int, workdir: Path, **config: Any) -> list[Replica]:
    """``n`` replicas with the same config (``redis_url`` defaults to database 0)."""
    config.setdefault("redis_url", f"{REDIS_BASE}/0")
    return [Replica(f"r{i}", workdir, **config) for i in range(n)]


async def start_all(replicas: Sequence[Replica]) -> None:
    for r in replicas:
        r.start()
    await asyncio.gather(*(r.wait_ready() for r in replicas))


def stop_all(replicas: Sequence[Replica]) -> None:
    for r in replicas:
        if r.proc is not None and r.proc.poll() is None:
            r.proc.send_signal(signal.SIGTERM)
    for r in replicas:
        r.stop()


async def chat(
    session: aiohttp.ClientSession, replica: Replica, *, key: str = TENANT_KEY, route: str = "chat",
    max_tokens: int = 1500,
) -> tuple[int, dict[str, Any], Mapping[str, str]]:  # fmt: skip
    body = {"model": route, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "spend it"}]}
    async with session.post(
        f"{replica.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
    ) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


def ledger_rows(database_url: str, schema: str) -> list[tuple[str, str, int]]:
    """(request_id, tenant, total_cost_nanos) of every record."""
    import psycopg

    with psycopg.connect(PG_BASE) as conn:
        return [
            (str(r[0]), str(r[1]), int(r[2]))
            for r in conn.execute(
                f"SELECT request_id, tenant_id, total_cost_nanos FROM {schema}.usage_records"
            )
        ]
