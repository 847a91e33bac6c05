"""What the simulator served, for tests and benchmarks (``GET /_sim/stats``).

Streams are counted by how they ended, so a test can prove that a client (or
the gateway) that went away made the simulator stop streaming: ``open`` goes
back to 0 and ``client_closed`` counts it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["Stats"]


class Stats:
    __slots__ = ("by_model", "by_path", "by_status", "faults", "input_tokens", "output_tokens",
                 "requests", "streams")

    def __init__(self) -> None:
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.by_model: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.input_tokens = 0
        self.output_tokens = 0
        self.streams: Counter[str] = Counter()
        """opened, completed, client_closed, cut (by a fault), errored (in-stream error)."""

    def request(self, path: str) -> None:
        self.requests += 1
        self.by_path[path] += 1

    def answered(self, status: int, model: str | None = None) -> None:
        self.by_status[status] += 1
        if model:
            self.by_model[model] += 1

    def tokens(self, input_tokens: int, output_tokens: int) -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens

    @property
    def open_streams(self) -> int:
        s = self.streams
        return s["opened"] - s["completed"] - s["client_closed"] - s["cut"] - s["errored"]

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "by_model": dict(self.by_model),
            "faults": dict(self.faults),
            "tokens": {"input": self.input_tokens, "output": self.output_tokens},
            "streams": {
                "opened": self.streams["opened"],
                "open": self.open_streams,
                "completed": self.streams["completed"],
                "client_closed": self.streams["client_closed"],
                "cut": self.streams["cut"],
                "errored": self.streams["errored"],
            },
        }
