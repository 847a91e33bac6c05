"""Names a package exports but loads on first use (PEP 562), so importing the package stays cheap.

``import greenlang_llm`` must not load aiohttp, the price catalog or the database drivers
(tests/test_package.py checks it); the packages that export such names say where each lives
and take their module ``__getattr__`` from here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``where[name]`` is the (relative) module that
    defines ``name``; the first access imports it and caches the value in the package's namespace."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
