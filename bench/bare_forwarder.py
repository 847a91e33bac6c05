"""The floor for any Python gateway: Starlette + one pooled aiohttp session, no logic.

It forwards the request body and headers to the upstream unchanged and passes the answer
back (streamed chunk by chunk when the upstream streams). No auth, routing, translation,
accounting or retries: whatever the real gateway adds on top is what this leaves out, so
"our RPS / bare RPS" is the cost of the features. Served by uvicorn with uvloop and
httptools, one worker — the same server stack as ``greenlang-llm serve``.

    python bench/bare_forwarder.py --upstream http://127.0.0.1:8001 --port 8100
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


def build_app(upstream: str) -> Starlette:
    """An app that relays every POST/GET under ``/`` to ``upstream`` + the same path."""
    state: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=30)
        state["session"] = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=60), auto_decompress=False
        )
        try:
            yield
        finally:
            await state["session"].close()

    async def relay(request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        body = await request.body()
        resp = await state["session"].request(
            request.method, upstream + request.url.path, data=body, headers=headers
        )
        out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
        if resp.content_type == "text/event-stream":

            async def chunks() -> AsyncIterator[bytes]:
                try:
                    async for chunk in resp.content.iter_any():
                        yield chunk
                finally:
                    resp.release()

            return StreamingResponse(chunks(), status_code=resp.status, headers=out_headers)
        data = await resp.read()
        resp.release()
        return Response(data, status_code=resp.status, headers=out_headers)

    routes = [Route("/{path:path}", relay, methods=["GET", "POST"])]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.upstream.rstrip("/")),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
