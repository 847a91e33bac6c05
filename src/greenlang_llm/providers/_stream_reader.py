"""Reading a provider's SSE stream, one network read of text deltas at a time (``HttpProvider.stream``).

Kept apart from the request machinery because it is the one place where bytes
from the network meet the wire parsers, and where every way a stream can fail
(cut, idle timeout, error event, missing terminal event) becomes a
``StreamInterruptedError`` that carries the text already delivered.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Protocol

import aiohttp

from .._errors import StreamInterruptedError
from ..content import Delta

if TYPE_CHECKING:
    from ..wire._common import ParsedResponse
    from ..wire.sse import ServerSentEvent

__all__ = ["SSEReader", "WireStreamParser"]


class WireStreamParser(Protocol):
    """What ``wire.anthropic.StreamParser`` and ``wire.openai.StreamParser`` both offer."""

    done: bool

    @property
    def text(self) -> str: ...

    def feed(self, event: ServerSentEvent) -> str | list[Delta] | None: ...

    def finish(self) -> ParsedResponse: ...


class SSEReader:
    """Pulls text deltas out of an open streaming response, one network read at a time.

    Every failure while reading is a ``StreamInterruptedError`` carrying the text
    so far: a cut connection, an idle timeout, an error event, a stream that ends
    before its terminal event. Whether that is retried is decided by the caller
    (only before the first delta was handed out).
    """

    __slots__ = (
        "_decoder", "_eof", "_events", "_failed", "_idle", "_last", "_loop", "_pending", "_until", "parser",
        "provider", "resp",
    )

    def __init__(self, resp: aiohttp.ClientResponse, parser: WireStreamParser, provider: str) -> None:
        from ..wire.sse import SSEDecoder

        self.resp = resp
        self.parser = parser
        self.provider = provider
        self._decoder = SSEDecoder()
        self._events: deque[ServerSentEvent] = deque()
        self._eof = False
        self._failed: Exception | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: float | None = None
        self._last = 0.0
        self._until: float | None = None
        self._pending: str | list[Delta] | None = None
        """A parsed run of the other kind, met while joining: handed out by the next call."""

    def watch(self, idle: float | None, until: float | None) -> None:
        """From now on, bound every gap between two deltas by ``idle`` seconds and everything by
        ``until`` (event-loop time); either may be None.

        The clock is read once per handed-out text and a timer is armed only when a network
        read has to wait, so a fast stream pays no timer per delta (many arrive in one read).
        """
        self._loop = asyncio.get_running_loop()
        self._idle, self._until = idle, until
        self._last = self._loop.time()

    def _read_by(self) -> float | None:
        if self._idle is None:
            return self._until
        by = self._last + self._idle
        return by if self._until is None else min(by, self._until)

    async def next_text(self) -> str | list[Delta] | None:
        """What arrived since the last call: text, or a list of deltas; None once the stream
        completed properly.

        Deltas that arrived in the same network read are handed out joined, as one: they
        reached us at the same instant, so nothing is delayed, and every layer above
        (guard, router, gateway relay, the caller's writer) pays once per read instead of
        once per token (a fast upstream packs dozens of deltas into one read). Text runs
        and runs of other deltas (thinking, tool calls: the parser returns those as a list)
        are handed out apart, in order, so a text chunk stays a plain string. Events are
        still parsed one by one, so an error event that arrived in the same read as
        earlier text is raised on the next call, after that text was handed out, exactly
        as if it had arrived later.
        """
        if self._failed is not None:
            error, self._failed = self._failed, None
            raise error
        parser = self.parser
        events = self._events
        while True:
            text = ""
            parts: list[str] | None = None
            rich: list[Delta] | None = None
            pending = self._pending
            if pending is not None:
                self._pending = None
                if isinstance(pending, str):
                    text = pending
                else:
                    rich = list(pending)
            while events and not parser.done:
                try:
                    delta = parser.feed(events.popleft())
                except Exception as exc:
                    if not text and rich is None:
                        raise
                    self._failed = exc  # hand out what came before it first
                    break
                if not delta:
                    continue
                if isinstance(delta, str):
                    if rich is not None:
                        last = rich[-1]
                        if last.kind == "text":  # more of the same text ([meta, text] + text): one chunk
                            rich[-1] = Delta("text", last.index, last.text + delta)
                            continue
                        self._pending = delta  # a text run after other deltas: the next call's
                        break
                    if not text:
                        text = delta
                    elif parts is None:
                        parts = [text, delta]
                    else:
                        parts.append(delta)
                elif text:
                    self._pending = delta  # other deltas after a text run: the next call's
                    break
                elif rich is None:
                    rich = list(delta)
                else:
                    rich.extend(delta)
            if rich is not None:
                if self._loop is not None:
                    self._last = self._loop.time()
                return rich
            if text:
                if self._loop is not None:
                    self._last = self._loop.time()
                return text if parts is None else "".join(parts)
            if parser.done:
                return None
            if self._eof:
                parser.finish()  # raises: the stream ended without its terminal event
                return None
            read_by = None if self._loop is None else self._read_by()
            try:
                if read_by is None:
                    data = await self.resp.content.readany()
                else:
                    async with asyncio.timeout_at(read_by):
                        data = await self.resp.content.readany()
            except TimeoutError:
                if read_by is not None and read_by == self._until:
                    what = "the call deadline passed mid-stream"
                else:
                    what = f"no data for {self._idle:g}s (idle timeout)"
                raise StreamInterruptedError(
                    f"{self.provider}: stream stalled: {what} after {len(parser.text)} characters",
                    provider=self.provider,
                    partial_text=parser.text,
                ) from None
            except (aiohttp.ClientError, OSError) as exc:
                raise StreamInterruptedError(
                    f"{self.provider}: stream cut ({type(exc).__name__}) after {len(parser.text)} characters",
                    provider=self.provider,
                    partial_text=parser.text,
                ) from None
            if data:
                self._events.extend(self._decoder.feed(data))
            else:
                self._eof = True
                self._events.extend(self._decoder.flush())

    async def drain(self) -> None:
        """After the terminal event: read the (empty) rest so the connection is reused."""
        try:
            if not self.resp.content.at_eof():
                async with asyncio.timeout(1.0):
                    await self.resp.read()
        except (aiohttp.ClientError, OSError, TimeoutError):
            self.resp.close()
        finally:
            self.resp.release()

    def close(self) -> None:
        """Drop the connection now (unread body: it cannot go back to the pool)."""
        self.resp.close()
