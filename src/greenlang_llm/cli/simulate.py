"""``greenlang-llm simulate``: run the wire-compatible upstream simulator in the foreground.

Binds 127.0.0.1:8001 by default, prints its base URL as the first line of
stdout once it accepts connections (port 0 picks a free port), and serves until
interrupted. Anthropic clients use the URL as is; OpenAI clients add ``/v1``.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import UsageError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate", help="run the fake Anthropic/OpenAI upstream with fault injection",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port (default 8001; 0 = any free port)")
    parser.add_argument("--config", metavar="FILE", help="TOML file: models, latency, faults, keys")
    parser.add_argument("--seed", type=int, default=None, help="override the config's RNG seed")


def run(args: argparse.Namespace) -> int:
    from ..simulator.config import SimulatorConfig
    from ..simulator.server import bind_socket, serve_forever

    try:
        config = SimulatorConfig.from_toml(args.config) if args.config else SimulatorConfig()
    except FileNotFoundError as exc:
        raise UsageError(f"--config: no such file: {args.config}") from exc
    except (ValueError, TypeError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise UsageError(f"--config {args.config}: {exc}") from exc
    if args.seed is not None:
        config.seed = args.seed
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {args.port}")
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        raise UsageError(f"cannot bind {args.host}:{args.port}: {exc.strerror or exc}") from exc
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"http://{shown}:{port}", flush=True)
    serve_forever(sock, config)
    return 0
