"""The guarded httptools protocol: head/body deadlines and the head size cap, without real time.

The protocol is driven directly (bytes in through ``data_received``, bytes out through a fake
transport) on the running loop, except that its timers are recorded instead of scheduled, so a
test fires a deadline when it wants. One test runs the class under a real uvicorn server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import uvicorn
from uvicorn.server import ServerState

from greenlang_llm.gateway.http_guard import GuardedHttpToolsProtocol, guard_supported, guarded_protocol


class Timer:
    def __init__(self, delay: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.delay, self.callback, self.args, self.cancelled = delay, callback, args, False

    def cancel(self) -> None:
        self.cancelled = True


class ManualTimers:
    """The running loop, but ``call_later`` only records: tests fire timers by hand."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.timers: list[Timer] = []

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(delay, callback, args)
        self.timers.append(timer)
        return timer

    def pending(self) -> list[Timer]:
        """Timers not cancelled yet (the guard's and uvicorn's own)."""
        return [t for t in self.timers if not t.cancelled]

    def fire(self) -> None:
        """Fire every pending timer (each as if its delay had passed)."""
        for timer in self.pending():
            timer.cancel()
            timer.callback(*timer.args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.protocol: Any = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "wrote to a closed transport"
        self.written += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 4000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Echo:
    """Reads the whole body, answers its length; ``/stream`` answers in parts released by the test."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.disconnected = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected += 1
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/stream":
            await send({"type": "http.response.body", "body": b"first;", "more_body": True})
            await self.release.wait()
        await send({"type": "http.response.body", "body": f"size={size}".encode()})


LIMITS = {"header_timeout": 5.0, "body_timeout": 7.0, "max_header_bytes": 2048}


async def connect(app: Echo, **limits: Any) -> tuple[GuardedHttpToolsProtocol, FakeTransport, ManualTimers]:
    cls = guarded_protocol(**{**LIMITS, **limits})
    config = uvicorn.Config(app, http=cls, ws="none", lifespan="off", log_level="critical")
    timers = ManualTimers(asyncio.get_running_loop())
    protocol = cls(config, ServerState(), {}, _loop=timers)  # type: ignore[arg-type]
    transport = FakeTransport()
    transport.protocol = protocol
    protocol.connection_made(transport)
    return protocol, transport, timers


def guards(timers: ManualTimers) -> list[Timer]:
    return [t for t in timers.pending() if getattr(t.callback, "__name__", "") == "_expired"]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def post(path: str = "/", body: bytes = b"", extra: bytes = b"") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Length: {len(body)}\r\n".encode()
    return head + extra + b"\r\n" + body


def statuses(written: bytes) -> list[int]:
    return [int(line.split()[1]) for line in bytes(written).split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


async def test_a_connection_that_never_sends_a_request_is_answered_408_and_closed() -> None:
    _, transport, timers = await connect(Echo())
    assert [t.delay for t in timers.pending()] == [5.0]
    timers.fire()
    assert statuses(transport.written) == [408]
    assert transport.closed


async def test_headers_trickled_past_the_header_timeout_get_a_408() -> None:
    app = Echo()
    protocol, transport, timers = await connect(app)
    protocol.data_received(b"POST / HTTP/1.1\r\nHost: gw\r\n")
    protocol.data_received(b"X-Slow: 1\r\n")  # more bytes do not push the deadline back
    assert [t.delay for t in timers.pending()] == [5.0]
    timers.fire()
    assert statuses(transport.written) == [408]
    assert transport.closed


async def test_a_body_trickled_past_the_body_timeout_gets_a_408_and_the_app_sees_a_disconnect() -> None:
    app = Echo()
    protocol, transport, timers = await connect(app)
    protocol.data_received(b"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n{")
    await settle()
    assert [t.delay for t in timers.pending()] == [7.0]  # the body's deadline, from the end of the head
    protocol.data_received(b" ")
    timers.fire()
    await settle()
    assert statuses(transport.written) == [408]
    assert transport.closed
    assert app.disconnected == 1


async def test_nothing_is_timed_once_the_body_is_in_so_a_long_response_runs_to_its_end() -> None:
    app = Echo()
    protocol, transport, timers = await connect(app)
    protocol.data_received(post("/stream", b"hello"))
    await settle()
    assert guards(timers) == []  # the app may take as long as it needs
    assert b"first;" in transport.written
    app.release.set()
    await settle()
    assert b"size=5" in transport.written
    assert statuses(transport.written) == [200]
    assert not transport.closed


async def test_a_kept_alive_connection_serves_request_after_request() -> None:
    protocol, transport, timers = await connect(Echo())
    for i in range(3):
        protocol.data_received(post("/", b"x" * i))
        await settle()
        assert guards(timers) == []  # (uvicorn's own keep-alive timer runs between requests)
    assert statuses(transport.written) == [200, 200, 200]
    assert b"size=2" in transport.written
    assert not transport.closed


async def test_a_big_body_in_many_reads_is_read_whole() -> None:
    protocol, transport, _ = await connect(Echo())
    body = b"a" * (1 << 20)
    data = post("/", body)
    for i in range(0, len(data), 65536):
        protocol.data_received(data[i : i + 65536])
        await settle()
    await settle()
    assert statuses(transport.written) == [200]
    assert f"size={1 << 20}".encode() in transport.written


@pytest.mark.parametrize("pieces", [1, 8], ids=["one read", "many reads"])
async def test_headers_over_max_header_bytes_are_refused_with_431(pieces: int) -> None:
    app = Echo()
    protocol, transport, _ = await connect(app)
    data = post("/", b"{}", b"X-Big: " + b"a" * 4096 + b"\r\n")
    step = -(-len(data) // pieces)
    for i in range(0, len(data), step):
        protocol.data_received(data[i : i + step])
    await settle()
    assert statuses(transport.written) == [431]
    assert transport.closed
    assert app.disconnected == 0  # the app never saw the request


async def test_headers_just_under_max_header_bytes_are_served() -> None:
    protocol, transport, _ = await connect(Echo())
    protocol.data_received(post("/", b"{}", b"X-Big: " + b"a" * 1800 + b"\r\n"))
    await settle()
    assert statuses(transport.written) == [200]


async def test_a_body_still_trickling_after_the_app_answered_only_closes() -> None:
    class Early(Echo):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 413, "headers": []})
            await send({"type": "http.response.body", "body": b"too big"})

    protocol, transport, timers = await connect(Early())
    protocol.data_received(b"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n{")
    await settle()
    timers.fire()
    await settle()
    assert statuses(transport.written) == [413]  # no 408 after the answer
    assert transport.closed


async def test_limits_reach_a_real_uvicorn_server(unused_tcp_port: int) -> None:
    app = Echo()
    app.release.set()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=unused_tcp_port, loop="asyncio", ws="none", lifespan="off",
        http=guarded_protocol(header_timeout=5.0, body_timeout=5.0, max_header_bytes=2048),
        log_level="critical",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(1000):  # uvicorn has no "started" event to wait on
            if server.started:
                break
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{unused_tcp_port}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            for _ in range(3):  # one kept-alive connection
                async with session.post(url + "/stream", data=b"b" * 300_000) as resp:
                    assert resp.status == 200
                    assert await resp.read() == b"first;size=300000"
            async with session.get(url + "/", headers={"x-big": "a" * 4096}) as resp:
                assert resp.status == 431
    finally:
        server.should_exit = True
        await task


async def test_a_pipelined_request_is_not_timed_while_an_earlier_response_is_still_running() -> None:
    app = Echo()
    protocol, transport, timers = await connect(app)
    # the first request streams until released; the second arrives whole, the third only in part
    protocol.data_received(post("/stream", b"one") + post("/", b"two") + b"POST / HTTP/1.1\r\nHo")
    await settle()
    for _ in range(3):  # deadlines pass while the server, not the client, is the slow side
        timers.fire()
        await settle()
    assert not transport.closed
    assert statuses(transport.written) == [200]
    app.release.set()
    await settle()
    assert statuses(transport.written) == [200, 200]
    assert b"size=3" in transport.written
    timers.fire()  # now the third request's head is late: the client's fault
    await settle()
    assert statuses(transport.written) == [200, 200, 408]
    assert transport.closed


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
async def test_a_client_that_half_closes_after_its_request_still_gets_the_answer(
    unused_tcp_port: int, loop_name: str
) -> None:
    """Writes wait for the end of the loop turn (write_coalescing.py); EOF must not drop them."""
    app = Echo()
    app.release.set()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=unused_tcp_port, loop=loop_name, ws="none", lifespan="off",
        http=guarded_protocol(header_timeout=5.0, body_timeout=5.0, max_header_bytes=2048),
        log_level="critical",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(1000):
            if server.started:
                break
            await asyncio.sleep(0.01)
        for _ in range(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
            writer.write(post("/", b"abc"))
            await writer.drain()
            writer.write_eof()  # shutdown(SHUT_WR), as `nc -N` does
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert statuses(answer) == [200]
            assert b"\r\nsize=3\r\n" in answer
    finally:
        server.should_exit = True
        await task


def test_the_guard_runs_on_the_installed_uvicorn() -> None:
    """The suite's other tests exercise the guard: they must not silently test the fallback."""
    assert guard_supported(), f"uvicorn {uvicorn.__version__} is outside TESTED_UVICORN: test it, then extend"


@pytest.mark.parametrize("version", ["0.33.0", "0.99.1", "1.0.0", "not-a-version"])
def test_an_untested_uvicorn_gets_its_own_protocol_and_a_warning(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert not guard_supported(version)
    with caplog.at_level(logging.WARNING, logger="greenlang_llm.gateway.http_guard"):
        chosen = guarded_protocol(**LIMITS, version=version)  # type: ignore[arg-type]
    assert chosen == "httptools"
    assert version in caplog.text
    assert "bodies are still bounded" in caplog.text
