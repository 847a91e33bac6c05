"""Slow and oversized clients, cut off where the bytes arrive: uvicorn's httptools protocol, guarded.

uvicorn bounds only the idle time *after* a response (``timeout_keep_alive``). A client that
connects and sends nothing, trickles its headers, or trickles its body holds a connection
(and, once the headers are in, an app task waiting on ``receive()``) forever; and httptools
buffers request headers of any size. Those are properties of the connection, so they are
enforced in the protocol, before the app sees a request:

- ``header_timeout``: from the connection's start (or a request's first byte) to the end of
  its headers. Expiry answers ``408`` and closes.
- ``body_timeout``: from the end of the headers to the end of the body (the whole body, not
  the gap between reads: a byte every second would otherwise never expire). Expiry answers
  ``408`` (or only closes, if the app has already answered) and closes.
- ``max_header_bytes``: request line plus headers. Over it: ``431`` and close, counted as the
  bytes arrive so a huge header is refused before it is buffered whole.

Nothing is timed while the server, not the client, is the slow side: the timers stop when the
body is complete, so a long upstream call or a long stream is never cut; and a pipelined
request's clock is pushed back while an earlier response on the connection is still running.

Subclasses uvicorn's ``HttpToolsProtocol``, which is not a public API: the httptools
parser callbacks ``on_message_begin``, ``on_headers_complete``, ``on_body`` and
``on_message_complete``, plus ``on_response_complete``, ``cycle``, ``pipeline``, ``url`` and
``headers``. tests/gateway/test_http_guard.py pins the behaviour against the installed version.
So the guard is used only with the uvicorn minors it was tested with (:data:`TESTED_UVICORN`);
with any other, :func:`guarded_protocol` logs a warning and returns uvicorn's own ``httptools``
protocol: the gateway then still bounds a body's size and time in the app (``handler.read_body``)
but loses the head deadline, the head size cap and the write coalescing — it degrades, it
never breaks on an internal rename.
It costs ~5–10 µs of CPU per request (two timers, measured with a fake transport on uvloop).
It also hands uvicorn a ``CoalescingTransport`` so each response turn's writes leave in one
``send()`` (see ``write_coalescing.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .write_coalescing import CoalescingTransport

__all__ = ["TESTED_UVICORN", "GuardedHttpToolsProtocol", "guard_supported", "guarded_protocol"]

logger = logging.getLogger(__name__)

TESTED_UVICORN = ((0, 34), (0, 55))
"""The oldest and newest uvicorn (major, minor) the guard was tested with; extend after testing."""

_HOOKS = ("on_message_begin", "on_headers_complete", "on_body", "on_message_complete",
          "on_response_complete", "connection_made", "connection_lost", "eof_received", "data_received")

_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 16\r\nconnection: close\r\n\r\nRequest Timeout\n"
)
_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 32\r\nconnection: close\r\n\r\nRequest Header Fields Too Large\n"
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with head and body deadlines and a head size cap (class attributes)."""

    header_timeout: float = 5.0
    body_timeout: float = 5.0
    max_header_bytes: int = 65536

    _timer: asyncio.TimerHandle | None = None
    _phase = ""  # "head" while a request's head is arriving, "body" while its body is, else ""
    _head_bytes = 0  # raw bytes of earlier reads that ended inside this request's head
    _read = 0  # size of the read being parsed
    _refused = False  # answered 408/431: everything after is dropped

    # ---------------------------------------------------------------- timers

    def _arm(self, phase: str, delay: float) -> None:
        self._disarm()
        self._phase = phase
        self._timer = self.loop.call_later(delay, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._phase = ""

    def _responding(self) -> bool:
        """An app is running for a request on this connection and has not finished its response."""
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete

    def _expired(self) -> None:
        self._timer = None
        if self.transport is None or self.transport.is_closing():
            return
        phase = self._phase
        if phase == "head" and self._responding():
            # a pipelined request's head, behind a response still running: the server is the slow side
            self._arm("head", self.header_timeout)
            return
        if phase == "body" and self.cycle is not None and self.cycle.response_started:
            if not self.cycle.response_complete:  # the app answers before reading it all: let it finish
                self._arm("body", self.body_timeout)
                return
            self._refuse(b"")  # answered already; the client is still trickling a body nobody reads
            return
        self._refuse(_408)

    def _refuse(self, response: bytes) -> None:
        """Answer ``response`` unless another response is on the wire, then close the connection."""
        in_head = self._phase == "head" or self.cycle is None
        self._disarm()
        self._refused = True
        # in the head, ``cycle`` is the previous request (a pipelined one may still be answering);
        # in the body, it is this request, and the app may have started its answer
        busy = self._responding() if in_head else self.cycle.response_started
        if response and not busy:
            self.transport.write(response)
        self.transport.close()

    # ---------------------------------------------------------------- connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # one send() per response turn (write_coalescing.py); flow control keeps the socket's transport
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._arm("head", self.header_timeout)  # a connection that never sends a request

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def eof_received(self) -> None:
        # the client half-closed after its request: an answer queued this turn must leave
        # before the transport closes itself
        self.transport.flush()  # type: ignore[attr-defined]
        super().eof_received()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._read = len(data)
        super().data_received(data)
        if self._phase == "head" and not self._refused and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._refuse(_431)

    # ---------------------------------------------------------------- parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._arm("head", self.header_timeout)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        # the head ended in this read, which is not counted yet: cheap bound first, exact size if needed
        if self._head_bytes + self._read > self.max_header_bytes and (
            len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers) > self.max_header_bytes
        ):
            self._refuse(_431)
            return
        self._disarm()
        super().on_headers_complete()
        if not self._queued(self.cycle):
            self._arm("body", self.body_timeout)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        if self._phase == "body":
            self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # a pipelined request starts now; its body (paused until now) is timed from here
        cycle = self.cycle
        if (
            not self._refused
            and self._phase == ""
            and cycle is not None
            and cycle.more_body
            and not cycle.response_complete
            and not self._queued(cycle)
            and not self.transport.is_closing()
        ):
            self._arm("body", self.body_timeout)

    def _queued(self, cycle: Any) -> bool:
        return bool(self.pipeline) and any(queued is cycle for queued, _ in self.pipeline)


def guard_supported(version: str = uvicorn.__version__) -> bool:
    """Whether the guard may subclass this uvicorn's protocol: a tested minor, hooks all present."""
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    oldest, newest = TESTED_UVICORN
    if not oldest <= major_minor <= newest:
        return False
    return all(callable(getattr(HttpToolsProtocol, hook, None)) for hook in _HOOKS)


def guarded_protocol(
    *, header_timeout: float, body_timeout: float, max_header_bytes: int, version: str = uvicorn.__version__
) -> type[GuardedHttpToolsProtocol] | Literal["httptools"]:
    """A protocol class for ``uvicorn.run(http=...)`` with these limits, or uvicorn's own
    ``"httptools"`` (and a warning) when this uvicorn is not one the guard was tested with."""
    if not guard_supported(version):
        oldest, newest = TESTED_UVICORN
        logger.warning(
            "uvicorn %s is outside the versions the connection guard was tested with (%d.%d to %d.%d): "
            "serving without the head deadline, head size cap and write coalescing "
            "(bodies are still bounded in the app)", version, *oldest, *newest)
        return "httptools"
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "max_header_bytes": max_header_bytes,
        },
    )
