"""Redis unreachable at run time: replicas go on with local limits, never with unlimited spending.

The replicas reach Redis through a TCP proxy in the test process; cutting it (listener closed,
connections reset) is a Redis outage for them without touching the real Redis anyone else uses.
Each replica may then reserve only its share of the budget left as last seen; when the proxy
comes back the spend recorded meanwhile is replayed into Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from scaleout_support import chat, ledger_rows, make_replicas, start_all, stop_all

from greenlang_llm.simulator import ModelBehaviour, Simulator, SimulatorConfig

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


class CuttableProxy:
    """Loopback TCP proxy to Redis; ``cut()`` closes the listener and every connection."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 6379)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()


async def _ready(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(f"{url}/health/ready") as resp:
        body: dict[str, Any] = await resp.json()
        return body


async def test_redis_outage_falls_back_to_local_shares_and_replays_after(
    tmp_path: Path, pg_schema: tuple[str, str], redis_prefix: str, redis_db: Any
) -> None:
    url, schema = pg_schema
    proxy = CuttableProxy()
    await proxy.start()
    async with Simulator(SimulatorConfig(defaults=ModelBehaviour(reply_tokens=100_000))) as sim:
        replicas = make_replicas(
            2, tmp_path, database_url=url, redis_url=f"redis://127.0.0.1:{proxy.port}/0", prefix=redis_prefix,
            openai_url=sim.openai_base_url, budget_usd=1.0,
        )  # fmt: skip
        try:
            await start_all(replicas)
            async with aiohttp.ClientSession() as session:
                for i in range(20):  # $0.30 of the $1.00, through both replicas
                    assert (await chat(session, replicas[i % 2]))[0] == 200
                await asyncio.sleep(0.5)  # heartbeats: both replicas count 2 replicas
                await proxy.cut()
                during = await asyncio.gather(*(chat(session, replicas[i % 2]) for i in range(120)))
                states = [(await _ready(session, r.url))["shared_state"]["redis"] for r in replicas]
                await proxy.start()  # Redis is back (same port)
                for _ in range(100):
                    now = [(await _ready(session, r.url))["shared_state"]["redis"] for r in replicas]
                    if now == ["ok", "ok"]:
                        break
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail("the replicas never went back to the shared state")
                await asyncio.sleep(0.3)  # the ledger batches of the last requests
        finally:
            stop_all(replicas)
            await proxy.cut()
    served_during = sum(1 for status, _, _ in during if status == 200)
    refused = [b for status, b, _ in during if status != 200]
    rows = ledger_rows(url, schema)
    spent = sum(n for _, _, n in rows)
    logs = "".join(r.log.read_text() for r in replicas)
    print(f"\nRedis outage: {served_during} of 120 served on local shares, spent ${spent / 1e9:.6f} of $1.00")
    assert states == ["unreachable", "unreachable"]
    assert "budgets fall back to local limits" in logs
    assert 0 < served_during < 120  # degraded, not stopped, and not unlimited
    assert all(b["error"]["code"] == "budget_exceeded" for b in refused), refused[:1]
    assert spent <= 1_000_000_000
    assert len(rows) == 20 + served_during
    month = next(k for k in redis_db.scan_iter(match=f"{redis_prefix}s:acme:*"))
    assert int(redis_db.get(month)) == spent  # what was spent during the outage reached Redis after it
