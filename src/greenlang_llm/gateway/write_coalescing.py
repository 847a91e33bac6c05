"""Everything a response writes during one event-loop turn leaves in one ``send()``.

uvicorn writes the status line and headers as soon as the app sends
``http.response.start`` and the body on each ``http.response.body``, and uvloop's
transport turns every ``write`` into a syscall at once. A completion sends its
start and its body back to back, and a stream's first frames and its end often
follow in the same turn, so a response cost two to four ``send()`` calls where
one carries the same bytes (the syscalls were ≈ 17 % of the gateway's CPU on
streams, per ``python -m bench.profile_gateway --scenario stream-c50``).

``CoalescingTransport`` stands between the protocol and the socket transport: a
write only queues its bytes, and the first write of a turn schedules one flush
(``call_soon``) at the end of it. Nothing waits longer than the current turn,
so no byte is held back while the app waits for anything. ``close`` flushes
first; ``abort`` drops what is queued, as the socket transport would. Flow control
is untouched: the socket transport still sees every byte (one turn later) and
still pauses and resumes the protocol by its own buffer.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["CoalescingTransport"]


class CoalescingTransport:
    """A write-side wrapper around an ``asyncio.Transport``; everything else is passed through."""

    __slots__ = ("_loop", "_queued", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._queued: list[bytes] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        queued = self._queued
        if queued is None:
            self._queued = [bytes(data)]
            self._loop.call_soon(self.flush)
        else:
            queued.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Hand what this turn wrote to the socket transport (in one piece)."""
        queued, self._queued = self._queued, None
        if queued and not self.transport.is_closing():
            self.transport.write(queued[0] if len(queued) == 1 else b"".join(queued))

    def get_write_buffer_size(self) -> int:
        queued = sum(map(len, self._queued)) if self._queued else 0
        return self.transport.get_write_buffer_size() + queued

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self._queued = None
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:  # pause_reading, set_protocol, ...: the socket's own
        return getattr(self.transport, name)
