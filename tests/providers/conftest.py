"""Fixtures for the provider tests: a scripted loopback upstream and a fake sleep.

``upstream`` is a tiny aiohttp server on 127.0.0.1 that answers each request
with the next scripted :class:`Reply` (status, headers, body, or SSE pieces with
an optional cut, hang or connection reset) and records what it received, so a
test can assert the exact number of attempts and the headers sent. The
simulator (``greenlang_llm.simulator``) covers the same paths end to end; this
server exists for byte-exact fixture replay and faults the simulator does not
script (a hang before headers, a reset with no answer).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from greenlang_llm.simulator.testing import simulator, simulator_url  # noqa: F401  (fixtures)

FIXTURES = Path(__file__).parents[1] / "wire" / "fixtures"  # the repo's copy of ../shared/wire-fixtures
CANARY_KEY = "sk-test-canary-7f3a9c"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_http(name: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a ``*.http`` fixture."""
    raw = fixture_bytes(name)
    head, _, body = raw.partition(b"\n\n")
    lines = head.decode().splitlines()
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name_, _, value = line.partition(":")
        if name_.lower() not in ("content-length", "content-encoding", "transfer-encoding", "connection"):
            headers[name_.strip()] = value.strip()
    return status, headers, body


def sse_events(raw: bytes) -> list[bytes]:
    """A ``*.sse`` body split into its events (each keeps its blank line)."""
    return [part + b"\n\n" for part in raw.split(b"\n\n") if part.strip()]


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    pieces: list[bytes] | None = None
    """Streamed body, one write per piece (``text/event-stream``)."""
    cut_after: int | None = None
    """Abort the connection after writing this many pieces."""
    hang: bool = False
    """Never answer (the client must time out)."""
    hang_after: int | None = None
    """Stop writing (but keep the connection open) after this many pieces."""
    reset: bool = False
    """Close the connection without any answer."""


@dataclass
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Upstream:
    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.default: Reply = Reply(status=500, body={"error": {"message": "no reply scripted"}})
        self.requests: list[Captured] = []
        self.base_url = ""
        self.open_streams = 0

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def reply(self, **fields: Any) -> Upstream:
        """Script one reply (see :class:`Reply` for the fields); chainable."""
        self.script.append(Reply(**fields))
        return self

    def json_fixture(self, name: str, status: int = 200, **fields: Any) -> Upstream:
        return self.reply(status=status, body=fixture_bytes(name), **fields)

    def http_fixture(self, name: str, **fields: Any) -> Upstream:
        status, headers, body = fixture_http(name)
        return self.reply(
            status=status, headers={**headers, **fields.pop("headers", {})}, body=body, **fields
        )

    def sse_fixture(self, name: str, **fields: Any) -> Upstream:
        return self.reply(pieces=sse_events(fixture_bytes(name)), **fields)

    @property
    def posts(self) -> list[Captured]:
        return [r for r in self.requests if r.method == "POST"]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: Any = orjson.loads(raw) if raw else None
        self.requests.append(Captured(request.method, request.path, dict(request.headers), body))
        reply = self.script.popleft() if self.script else self.default
        if reply.reset:
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("scripted reset")
        if reply.hang:
            await asyncio.sleep(30)
        if reply.pieces is None:
            data = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
            headers = {"content-type": "application/json", **reply.headers}
            return web.Response(status=reply.status, body=data, headers=headers)
        resp = web.StreamResponse(
            status=reply.status, headers={"content-type": "text/event-stream", **reply.headers}
        )
        await resp.prepare(request)
        self.open_streams += 1
        try:
            for i, piece in enumerate(reply.pieces):
                if reply.cut_after is not None and i >= reply.cut_after:
                    assert request.transport is not None
                    request.transport.abort()
                    return resp
                if reply.hang_after is not None and i >= reply.hang_after:
                    await asyncio.sleep(30)
                await resp.write(piece)
            await resp.write_eof()
        finally:
            self.open_streams -= 1
        return resp


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", up.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    assert server.sockets
    port = server.sockets[0].getsockname()[1]
    up.base_url = f"http://127.0.0.1:{port}"
    try:
        yield up
    finally:
        await runner.cleanup()


@pytest.fixture
def canary_key() -> str:
    """A fake key whose appearance anywhere (logs, reprs, errors) is a leak."""
    return CANARY_KEY


class FakeSleep:
    """Records requested waits and returns at once (yielding to the loop once)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()
