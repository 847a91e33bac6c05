"""Streaming answers, with the stream faults, as a raw ASGI response.

A stream is planned up front as bytes (``head``, one frame per token, ``tail``)
by the wire modules' ``StreamWriter``; this module only sends them, with the
per-token delay, and breaks them the way a fault asks. With no delay and no
fault the whole body goes out in one write: that is the benchmark's fast path.

A client that goes away is noticed (``http.disconnect``) and the stream stops,
counted as ``client_closed`` in the stats; a gateway test relies on that to
prove it closes its upstream streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .faults import FaultRule
from .stats import Stats

__all__ = ["TRANSPORT_KEY", "StreamPlan", "StreamResponse", "reset_connection", "wait_until"]

TRANSPORT_KEY = "greenlang_sim.transport"
"""Scope key under which the outer ASGI wrapper leaves uvicorn's transport (for resets)."""


def reset_connection(scope: Scope, hard: bool = True) -> bool:
    """Drop the client's TCP connection. False if the server gives us no transport.

    ``hard``: an RST (SO_LINGER 0) before any response byte, the "connection
    reset by peer" of a crashed upstream. Otherwise a plain close after the bytes
    already written, so the client keeps the partial stream and then sees the
    body end early, as when a proxy drops a long response.
    """
    transport = scope.get(TRANSPORT_KEY)
    if transport is None:
        return False
    if not hard:
        transport.close()
        return True
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError, TypeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return True


async def settle() -> None:
    """Let the server run connection_lost after an abort, so it does not answer 500 over it."""
    for _ in range(3):
        await asyncio.sleep(0)


async def wait_until(seconds: float, stop: Callable[[], bool], step: float = 0.05) -> None:
    """Sleep up to ``seconds``, waking early once ``stop()`` is true (client gone, server closing)."""
    deadline = time.monotonic() + seconds
    while not stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(step, left))


@dataclass(slots=True)
class StreamPlan:
    head: bytes
    frames: list[bytes]
    tail: bytes
    error_frame: bytes
    invalid_frame: bytes
    token_delay: float = 0.0
    fault: FaultRule | None = None


class StreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self, plan: StreamPlan, headers: dict[str, str], stats: Stats, closing: Callable[[], bool]
    ) -> None:
        # No Response.__init__: it would add content-length: 0 to a body we stream.
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]
        self.plan, self.stats, self.closing = plan, stats, closing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plan, stats = self.plan, self.stats
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        stats.streams["opened"] += 1
        if plan.fault is None and not plan.token_delay:
            body = plan.head + b"".join(plan.frames) + plan.tail
            await send({"type": "http.response.body", "body": body, "more_body": False})
            stats.streams["completed"] += 1
            return
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            outcome = await self._send_frames(scope, send, gone)
        finally:
            watcher.cancel()
        stats.streams[outcome] += 1

    async def _send_frames(self, scope: Scope, send: Send, gone: asyncio.Event) -> str:
        plan = self.plan
        fault = plan.fault
        stop_at = len(plan.frames)
        if fault is not None:
            whole = fault.kind in ("no_terminal", "slow_first_token")
            stop_at = len(plan.frames) if whole else min(fault.after, len(plan.frames))
        await _body(send, plan.head)
        if fault is not None and fault.kind == "slow_first_token":
            await wait_until(fault.delay, lambda: gone.is_set() or self.closing())
            fault = None  # then the whole answer, as if nothing happened
        for frame in plan.frames[:stop_at]:
            if plan.token_delay:
                await asyncio.sleep(plan.token_delay)
            if gone.is_set():
                return "client_closed"
            await _body(send, frame)
        if fault is None:
            await _body(send, plan.tail, more=False)
            return "completed"
        if fault.kind == "stream_error":
            await _body(send, plan.error_frame, more=False)
            return "errored"
        if fault.kind == "invalid_json":
            await _body(send, plan.invalid_frame, more=False)
            return "errored"
        if fault.kind == "no_terminal":
            await _body(send, b"", more=False)
            return "cut"
        if fault.kind == "stall":
            await wait_until(fault.delay, lambda: gone.is_set() or self.closing())
            if gone.is_set():
                return "client_closed"
        # stream_cut, or a stall that outlived its delay: drop the connection mid-body
        if not reset_connection(scope, hard=False):
            raise ConnectionAbortedError("simulated stream cut")
        await settle()
        return "cut"


async def _body(send: Send, data: bytes, more: bool = True) -> None:
    message: dict[str, Any] = {"type": "http.response.body", "body": data, "more_body": more}
    await send(message)
