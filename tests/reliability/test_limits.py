"""Limits at the edge: oversized bodies and slow (slow-loris) clients, against ``greenlang-llm serve``.

The gateway runs as the CLI runs it (uvicorn + uvloop + httptools, a subprocess), because
these limits live in the server stack as much as in the app. uvicorn alone bounds only the
idle time *after* a response (``timeout_keep_alive``); ``serve`` adds, with its guarded
httptools protocol (gateway/http_guard.py), deadlines for a request's headers and body
(``[server] header_timeout`` / ``body_timeout``, 408), a cap on header bytes
(``max_header_bytes``, 431) and ``limit_concurrency``; these tests run with the defaults.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from reliability_support import TENANT_A_KEY, GatewayProcess, gateway_config

MAX_BODY = 1024 * 1024  # the default [server] max_body_bytes
CUT_OFF_WITHIN = 8.0  # a slow client should be dropped at least as fast as an idle keep-alive (5 s)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    workdir: Path = tmp_path_factory.mktemp("limits")
    # upstreams unreachable on purpose: nothing here may get as far as a provider call
    gw = GatewayProcess(gateway_config("http://127.0.0.1:9", "http://127.0.0.1:9/v1"), workdir)
    gw.start()
    yield gw
    gw.stop()


OPENAI = ("/v1/chat/completions", {"authorization": f"Bearer {TENANT_A_KEY}",
                                   "content-type": "application/json"})
ANTHROPIC = ("/v1/messages", {"x-api-key": TENANT_A_KEY, "anthropic-version": "2023-06-01",
                              "content-type": "application/json"})


@pytest.mark.parametrize(("path", "headers"), [OPENAI, ANTHROPIC], ids=["openai", "anthropic"])
async def test_an_oversized_body_is_a_413_in_the_api_shape(
    gateway: GatewayProcess, path: str, headers: dict[str, str]
) -> None:
    text = b"a" * (2 * MAX_BODY)
    body = b'{"model": "default", "messages": [{"role": "user", "content": "' + text + b'"}]}'
    async with aiohttp.ClientSession() as session:
        async with session.post(gateway.url + path, data=body, headers=headers) as resp:
            assert resp.status == 413
            data = await resp.json()
        # the same without a content-length: a chunked body is counted as it arrives

        async def chunks() -> object:
            for i in range(0, len(body), 65536):
                yield body[i:i + 65536]

        async with session.post(gateway.url + path, data=chunks(), headers=headers) as resp:
            assert resp.status == 413
            chunked = await resp.json()
    if path == OPENAI[0]:
        assert data["error"]["code"] == "request_too_large"
    else:
        assert data["type"] == "error"
        assert data["error"]["type"] == "request_too_large"
    data.pop("request_id", None)
    chunked.pop("request_id", None)
    assert chunked == data


async def _held_for(port: int, first: bytes, trickle: bytes, limit: float) -> float | None:
    """Send ``first``, then one ``trickle`` every 0.5 s; seconds until the server hung up, or None."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        if first:
            writer.write(first)
        while time.monotonic() - started < limit:
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.5)
            except TimeoutError:
                if trickle:
                    writer.write(trickle)
                    await writer.drain()
                continue
            if not data:  # EOF: the server closed the connection
                return time.monotonic() - started
            return time.monotonic() - started  # it answered (e.g. 408) and will close: cut off too
        return None
    except ConnectionError:
        return time.monotonic() - started
    finally:
        writer.close()


@pytest.mark.slow
async def test_slow_clients_are_cut_off(gateway: GatewayProcess) -> None:
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
    body_head = (
        head + f"Authorization: Bearer {TENANT_A_KEY}\r\nContent-Type: application/json\r\n".encode()
        + b"Content-Length: 100000\r\n\r\n{"
    )
    idle, headers, body = await asyncio.gather(
        _held_for(gateway.port, b"", b"", CUT_OFF_WITHIN),
        _held_for(gateway.port, head, b"X-Slow: 1\r\n", CUT_OFF_WITHIN),
        _held_for(gateway.port, body_head, b" ", CUT_OFF_WITHIN),
    )
    assert idle is not None, "a connection that never sends a request is never closed"
    assert headers is not None, "headers trickled one line every 0.5 s are never cut off"
    assert body is not None, "a body trickled one byte every 0.5 s is never cut off"


async def test_huge_request_headers_are_refused(gateway: GatewayProcess) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: gw\r\nX-Big: " + b"a" * (4 << 20) + b"\r\n\r\n")
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    except ConnectionError:
        return  # refused by closing: fine
    finally:
        writer.close()
    assert status_line.split()[1:2] in ([b"431"], [b"400"], [])
