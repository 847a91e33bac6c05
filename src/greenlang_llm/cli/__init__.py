"""``greenlang-llm`` command line: one module per subcommand, loaded on demand.

Each subcommand module exposes ``add_parser(subparsers)`` and ``run(args) -> int``.
Exit codes: 0 success, 2 bad arguments or config (one line, no traceback),
1 failure at run time.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

__all__ = ["UsageError", "main"]

SUBCOMMANDS = ("demo", "serve", "simulate", "costs")


class UsageError(Exception):
    """Bad arguments or configuration: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = _Parser(prog="greenlang-llm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    modules: dict[str, object] = {}
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        module.add_parser(sub)
        modules[name] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    level_name = os.environ.get("LOG_LEVEL", "WARNING").strip().upper() or "WARNING"
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):  # an unknown LOG_LEVEL must not crash the CLI
        print(f"warning: ignoring unknown LOG_LEVEL={level_name!r}; using WARNING", file=sys.stderr)
        level = logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        parser, modules = _build_parser()
        args = parser.parse_args(argv)
        module = modules[args.command]
        return int(module.run(args))  # type: ignore[attr-defined]
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
