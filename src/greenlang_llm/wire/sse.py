"""Server-sent events: an incremental decoder and an encoder.

Shared by the providers (decoding upstream streams), the simulator and the
gateway (encoding). The decoder follows the WHATWG event-stream rules that
matter for the two APIs: ``event:``/``data:`` fields, multi-line data joined by
``\\n``, comments (``:``) ignored, CR, LF and CRLF line endings, and events
split anywhere across network chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["SSEDecoder", "ServerSentEvent", "encode_event"]


class ServerSentEvent(NamedTuple):
    """One decoded event (immutable). A tuple: made once per upstream event, on the hot path."""

    event: str | None
    data: str


class SSEDecoder:
    """Feed bytes as they arrive; get complete events back.

    Linear in the bytes fed, however they are split: the buffer grows in place and
    only bytes not yet searched are scanned for a line end, so an upstream trickling
    one long line in small reads cannot make each read rescan (and copy) the whole line.
    """

    __slots__ = ("_buffer", "_data", "_event", "_scanned", "max_event_bytes")

    def __init__(self, max_event_bytes: int = 8 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._scanned = 0  # the first ``_scanned`` bytes of the buffer hold no line end
        self._event: str | None = None
        self._data: list[str] = []
        self.max_event_bytes = max_event_bytes

    def feed(self, chunk: bytes) -> Iterator[ServerSentEvent]:
        buffer = self._buffer
        cr = b"\r" in chunk or buffer.endswith(b"\r")  # (only a trailing CR can be left from before)
        buffer += chunk
        if cr:
            yield from self._feed_any(buffer)
            return
        # LF line ends only (what both APIs send): every complete line is decoded at once
        end = buffer.rfind(b"\n", self._scanned)
        if end >= 0:
            lines = buffer[:end].decode("utf-8", "replace").split("\n")
            del buffer[: end + 1]
            data = self._data
            name = self._event
            for line in lines:
                if not line:  # the blank line: dispatch
                    if data or name is not None:
                        yield ServerSentEvent(name, data[0] if len(data) == 1 else "\n".join(data))
                        data = self._data = []
                        name = self._event = None
                elif line.startswith("data:"):
                    data.append(line[6:] if line.startswith("data: ") else line[5:])
                elif line.startswith("event:"):
                    name = self._event = line[7:] if line.startswith("event: ") else line[6:]
                elif not line.startswith(":"):
                    self._line(line)  # another field: the general rule (``data`` with no colon, ...)
                    data, name = self._data, self._event
        self._scanned = len(buffer)
        if len(buffer) > self.max_event_bytes:
            raise ValueError(f"SSE line longer than {self.max_event_bytes} bytes")

    def _feed_any(self, buffer: bytearray) -> Iterator[ServerSentEvent]:
        """Any mix of CR, LF and CRLF line ends (a CR may arrive in one read, its LF in the next)."""
        start = 0
        nl = buffer.find(b"\n", self._scanned)
        cr = buffer.find(b"\r", self._scanned)
        while nl >= 0 or cr >= 0:
            if cr >= 0 and (nl < 0 or cr < nl):
                if cr == len(buffer) - 1:
                    break  # a lone CR at the end may be the first half of CRLF
                end, nxt = cr, cr + 2 if buffer[cr + 1] == 0x0A else cr + 1
            else:
                end, nxt = nl, nl + 1
            event = self._line(buffer[start:end].decode("utf-8", "replace"))
            if event is not None:
                yield event
            start = nxt
            if 0 <= nl < nxt:
                nl = buffer.find(b"\n", nxt)
            if 0 <= cr < nxt:
                cr = buffer.find(b"\r", nxt)
        if start:
            del buffer[:start]  # what is left came from this chunk: at most len(chunk) bytes move
        self._scanned = len(buffer) - 1 if buffer.endswith(b"\r") else len(buffer)
        if len(buffer) > self.max_event_bytes:
            raise ValueError(f"SSE line longer than {self.max_event_bytes} bytes")

    def flush(self) -> Iterator[ServerSentEvent]:
        """Call at end of stream: a last event without its blank line is still delivered."""
        if self._buffer:
            # what is left has no line end, but for a CR that was waiting for a possible LF
            line = self._buffer[:-1] if self._buffer.endswith(b"\r") else self._buffer
            event = self._line(line.decode("utf-8", "replace"))
            self._buffer = bytearray()
            self._scanned = 0
            if event is not None:
                yield event
        event = self._line("")
        if event is not None:
            yield event

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._data and self._event is None:
                return None
            event = ServerSentEvent(self._event, "\n".join(self._data))
            self._event, self._data = None, []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None


def encode_event(data: str | bytes, event: str | None = None) -> bytes:
    """One event, framed with its blank line. ``data`` must not contain newlines."""
    payload = data if isinstance(data, bytes) else data.encode()
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"
