"""The last API requests the simulator received, as they came: what an upstream saw.

A gateway test asks "what did the upstream receive?" (every field forwarded, translated or
dropped); this answers it. Each entry is ``{"path", "model", "headers", "body"}``: ``body``
is the parsed JSON exactly as received (the same object the handler parsed: no copy),
``headers`` only the few that say something about the call (``anthropic-version``,
``anthropic-beta``, ``content-type``, ``user-agent``, ``x-sim-fault``), never a key.
Entries are kept oldest first in a bounded deque (``request_log_size``, default 1,000), so
the hot path pays one small dict and one append.

``GET /_sim/requests`` (``?last=K`` for the newest K) returns ``{"requests": [...]}``;
``DELETE /_sim/requests`` and ``POST /_sim/reset`` clear it; in process it is
``SimulatorApp.request_log``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["LOGGED_HEADERS", "RequestLog"]

LOGGED_HEADERS = ("anthropic-version", "anthropic-beta", "content-type", "user-agent", "x-sim-fault")


class RequestLog:
    """A bounded, oldest-first list of the API requests received."""

    __slots__ = ("_entries",)

    def __init__(self, size: int = 1000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)

    @property
    def size(self) -> int:
        """How many requests are kept (the oldest go first)."""
        return self._entries.maxlen or 0

    def add(self, path: str, headers: Mapping[str, str], body: Any) -> None:
        """Record one request; ``headers`` lower-cased, ``body`` the parsed JSON (kept, not copied)."""
        model = body.get("model") if type(body) is dict else None
        self._entries.append({
            "path": path,
            "model": model if isinstance(model, str) else None,
            "headers": {k: headers[k] for k in LOGGED_HEADERS if k in headers},
            "body": body,
        })

    def entries(self, last: int | None = None) -> list[dict[str, Any]]:
        """The requests kept, oldest first; with ``last``, only the newest ``last`` of them."""
        items = list(self._entries)
        if last is not None:
            return items[len(items) - min(max(last, 0), len(items)) :]
        return items

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(list(self._entries))

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._entries[index]
