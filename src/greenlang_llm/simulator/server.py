"""Running the simulator: in-process for tests, or in the foreground for ``greenlang-llm simulate``.

In-process, ``Simulator`` starts ``uvicorn.Server`` (httptools) on a socket it
bound itself to 127.0.0.1 port 0, inside the running event loop, so a test
gets a free port without races and can still reach the state (``sim.faults``,
``sim.stats``) directly. The command line runs the same app with uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from types import TracebackType

import uvicorn

from .app import SimulatorApp
from .config import SimulatorConfig
from .faults import FaultInjector
from .stats import Stats

__all__ = ["Simulator", "bind_socket", "run_simulator", "serve_forever"]


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket; port 0 picks a free one (read it back from ``getsockname``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only turns Nagle off (TCP_NODELAY) on sockets that say so,
    # and without it every small answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _uvicorn_config(app: SimulatorApp, loop: str) -> uvicorn.Config:
    return uvicorn.Config(
        app.asgi,
        http="httptools",
        interface="asgi3",
        loop=loop,
        proxy_headers=False,
        server_header=False,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        backlog=2048,
    )


class Simulator:
    """``async with Simulator(config) as sim:`` serves on ``sim.base_url`` until the block ends.

    ``base_url`` is what an Anthropic client takes; OpenAI clients take
    ``openai_base_url`` (the same plus ``/v1``).
    """

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = SimulatorApp(config)
        self.host, self.port = host, port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def config(self) -> SimulatorConfig:
        return self.app.config

    @property
    def faults(self) -> FaultInjector:
        return self.app.faults

    @property
    def stats(self) -> Stats:
        return self.app.stats

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    async def start(self) -> None:
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(_uvicorn_config(self.app, "none"))
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("simulator stopped during start-up")
            await asyncio.sleep(0.002)

    async def stop(self) -> None:
        """Stop at once: uvicorn's own shutdown polls every 0.1 s, which adds up over a test suite."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        self._server = self._task = None
        self.app.closing = True  # slow/stall faults wake up and finish
        server.should_exit = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for listener in server.servers:
            listener.close()
        for connection in list(server.server_state.connections):
            connection.shutdown()
        if server.server_state.tasks:
            await asyncio.wait(list(server.server_state.tasks), timeout=1.0)
        for pending in list(server.server_state.tasks):
            pending.cancel()
        for listener in server.servers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(listener.wait_closed(), 1.0)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


@contextlib.asynccontextmanager
async def run_simulator(config: SimulatorConfig | None = None) -> AsyncIterator[str]:
    """Serve on a free 127.0.0.1 port for the duration of the block; yields the base URL."""
    async with Simulator(config) as sim:
        yield sim.base_url


def serve_forever(sock: socket.socket, config: SimulatorConfig | None = None) -> None:
    """Foreground server for the CLI (uvloop + httptools), on an already-bound socket."""
    app = SimulatorApp(config)
    server = uvicorn.Server(_uvicorn_config(app, "uvloop"))
    server.run(sockets=[sock])
