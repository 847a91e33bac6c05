"""``greenlang-llm serve``: run the gateway (uvicorn + uvloop + httptools) from a TOML config.

``--check`` validates the config (including that every named environment
variable is set) and exits: 0 and a one-line summary when it is fine, 2 and
one line naming the bad key when it is not. Secrets are never printed.
``--print-schema`` prints the config file's JSON Schema (the same text as
docs/config.schema.json) for editors that validate TOML, and reads no config.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from . import UsageError

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="run the OpenAI/Anthropic-compatible gateway")
    parser.add_argument("--config", default="greenlang-llm.toml", help="TOML config (default: %(default)s)")
    parser.add_argument("--host", default=None, help="bind address (default: [server] host, else 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: [server] port, else 4000)")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument(
        "--print-schema", action="store_true", help="print the config file's JSON Schema and exit"
    )


def run(args: argparse.Namespace) -> int:
    if args.print_schema:
        from ..gateway.config import json_schema_text

        sys.stdout.write(json_schema_text())
        return 0
    from ..gateway.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise UsageError(f"config: {exc}") from None
    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError(f"--port: must be between 0 and 65535, got {args.port}")
    server = config.server
    host = args.host or server.host
    port = server.port if args.port is None else args.port
    if args.check:
        print(
            f"config ok: {len(config.providers)} providers, {len(config.routes)} routes, "
            f"{len(config.keys)} keys, {len(config.budgets)} budgets; would listen on {host}:{port}"
        )
        return 0

    import uvicorn

    from ..gateway.app import create_app
    from ..gateway.http_guard import guarded_protocol

    try:
        app = create_app(config, freeze_gc=True)
    except (ConfigError, ValueError) as exc:
        raise UsageError(f"config: {exc}") from None
    except ConnectionError as exc:  # the ledger database or Redis does not answer: one line, exit 1
        print(f"error: cannot start: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    if config.admin_key_sha256 is None:
        logger.warning("admin API disabled: %s is not set", server.admin_key_env)
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        # httptools with deadlines for a request's head and body and a cap on its head (slow clients)
        http=guarded_protocol(
            header_timeout=server.header_timeout,
            body_timeout=server.body_timeout,
            max_header_bytes=server.max_header_bytes,
        ),
        ws="none",  # the gateway serves no websockets; an upgrade request is plain HTTP to it
        limit_concurrency=server.limit_concurrency,
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=int(server.shutdown_timeout),
        log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower(),
    )
    return 0
