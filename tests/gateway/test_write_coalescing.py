"""CoalescingTransport: one socket write per event-loop turn, nothing held past the turn."""

from __future__ import annotations

import asyncio
from typing import Any

from greenlang_llm.gateway.write_coalescing import CoalescingTransport


class SocketTransport(asyncio.Transport):
    """Records writes the way the socket transport would receive them."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.paused = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 4000) if name == "sockname" else default

    def pause_reading(self) -> None:
        self.paused = True


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_writes_of_one_turn_leave_in_one_piece_at_its_end() -> None:
    sock = SocketTransport()
    t = CoalescingTransport(sock, asyncio.get_running_loop())
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(b"")
    t.writelines([b"data: a\n\n", bytearray(b"data: b\n\n")])
    assert sock.writes == []
    assert t.get_write_buffer_size() == 7 + 19 + 18
    await next_turn()
    assert sock.writes == [b"HTTP/1.1 200 OK\r\n\r\ndata: a\n\ndata: b\n\n"]
    t.write(b"later")
    await next_turn()
    assert sock.writes[1:] == [b"later"]


async def test_close_sends_what_is_queued_first_and_abort_drops_it() -> None:
    sock = SocketTransport()
    t = CoalescingTransport(sock, asyncio.get_running_loop())
    t.write(b"last words")
    t.close()
    assert sock.writes == [b"last words"]
    assert sock.closed
    await next_turn()  # the scheduled flush finds nothing left
    assert sock.writes == [b"last words"]

    sock2 = SocketTransport()
    t2 = CoalescingTransport(sock2, asyncio.get_running_loop())
    t2.write(b"never sent")
    t2.abort()
    await next_turn()
    assert sock2.writes == []
    assert sock2.aborted


async def test_nothing_is_written_to_a_transport_closed_meanwhile() -> None:
    sock = SocketTransport()
    t = CoalescingTransport(sock, asyncio.get_running_loop())
    t.write(b"x")
    sock.closed = True  # the peer went away during the turn
    await next_turn()
    assert sock.writes == []
    assert t.is_closing()


async def test_everything_else_is_the_socket_transports() -> None:
    sock = SocketTransport()
    t = CoalescingTransport(sock, asyncio.get_running_loop())
    assert t.get_extra_info("sockname") == ("127.0.0.1", 4000)
    assert t.get_extra_info("peername", "none") == "none"
    t.pause_reading()
    assert sock.paused
