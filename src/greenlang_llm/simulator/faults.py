"""Fault rules and the seeded injector that decides which request gets which fault.

A fault comes from a rule (config file at start, ``POST /_sim/faults`` at run
time) or from the request itself (``x-sim-fault: rate_limit;retry_after=2``).
Rules are tried in order; each matching rule draws once from one seeded RNG, so
the same sequence of requests meets the same faults on every run. A rule with
``lasts`` applies only for that many seconds after it was installed (config at
start or ``POST /_sim/reset``, or ``POST /_sim/faults``), on the injector's clock.

Kinds (``KINDS``; aliases in ``ALIASES``, e.g. ``529`` → ``overloaded``):

- answers instead of a reply: ``http_500``, ``http_503``, ``overloaded`` (Anthropic 529,
  OpenAI 503), ``rate_limit`` (429 + ``retry-after``, and ``retry-after-ms`` for OpenAI),
  ``auth`` (401), ``bad_request`` (400), ``context_length`` (400), ``content_policy`` (400),
  ``not_found`` (404), ``prefill`` (400, only when the last message is the assistant's),
  ``down`` (503 to everything it matches; with ``lasts``, a model that is down for the first
  ``lasts`` s and then healthy);
- ``slow``: sleep ``delay`` seconds before answering (past a client's timeout);
- ``reset``: close the connection with a TCP RST before any response byte;
- streams only: ``stream_cut`` (close the connection after ``after`` tokens), ``stream_error`` (the API's
  in-stream error after ``after`` tokens), ``stall`` (stop after ``after`` tokens and hold
  the connection for ``delay`` s), ``invalid_json`` (a broken event after ``after`` tokens),
  ``no_terminal`` (all tokens, then end without message_stop / finish_reason / [DONE]),
  ``slow_first_token`` (the 200 and the stream's opening events at once, then nothing for
  ``delay`` s, then the whole answer: a model that accepts and stays silent).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["ALIASES", "KINDS", "STREAM_KINDS", "FaultInjector", "FaultRule", "parse_fault_header"]

STREAM_KINDS = frozenset({"stream_cut", "stream_error", "stall", "invalid_json", "no_terminal",
                          "slow_first_token"})
KINDS = frozenset(
    {"http_500", "http_503", "overloaded", "rate_limit", "auth", "bad_request", "context_length",
     "content_policy", "not_found", "prefill", "down", "slow", "reset"}
) | STREAM_KINDS
ALIASES = {
    "500": "http_500", "503": "http_503", "529": "overloaded", "429": "rate_limit", "401": "auth",
    "400": "bad_request", "404": "not_found", "timeout": "slow", "connection_reset": "reset",
}


@dataclass(frozen=True, slots=True)
class FaultRule:
    kind: str
    rate: float = 1.0
    """Probability per matching request (seeded)."""
    model: str | None = None
    """Only requests for this model (None: any)."""
    path: str | None = None
    """Only this path, e.g. ``/v1/messages`` (None: any API path)."""
    after: int = 2
    """Stream faults: tokens sent before the fault."""
    retry_after: float = 1.0
    """rate_limit: seconds put in ``retry-after`` (and ``retry-after-ms``)."""
    delay: float = 30.0
    """slow / stall / slow_first_token: seconds to hold the request."""
    times: int | None = None
    """Fire at most this many times (None: unlimited)."""
    message: str | None = None
    lasts: float | None = None
    """Seconds the rule applies after it was installed or reset (None: for ever)."""

    def __post_init__(self) -> None:
        kind = ALIASES.get(self.kind, self.kind)
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(sorted(KINDS))}")
        object.__setattr__(self, "kind", kind)
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, got {self.rate}")
        if min(self.after, self.retry_after, self.delay, 0 if self.times is None else self.times) < 0:
            raise ValueError("fault after/retry_after/delay/times must not be negative")
        if self.lasts is not None and not self.lasts >= 0:
            raise ValueError(f"fault lasts must be a number of seconds >= 0, got {self.lasts!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        if "kind" not in data:
            raise ValueError("a fault needs a 'kind'")
        values = dict(data)
        for name in ("rate", "retry_after", "delay"):
            if name in values:
                values[name] = float(values[name])
        for name in ("after", "times"):
            if values.get(name) is not None:
                values[name] = int(values[name])
        if values.get("lasts") is not None:
            values["lasts"] = float(values["lasts"])
        values["kind"] = str(values["kind"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, path: str, model: str, stream: bool, last_is_assistant: bool) -> bool:
        if self.model is not None and self.model != model:
            return False
        if self.path is not None and self.path != path:
            return False
        if self.kind in STREAM_KINDS and not stream:
            return False
        return self.kind != "prefill" or last_is_assistant


def parse_fault_header(value: str) -> FaultRule:
    """``kind[;name=value]...``, e.g. ``529`` or ``stream_cut;after=3`` (rate is always 1)."""
    kind, *params = (p.strip() for p in value.split(";"))
    data: dict[str, Any] = {"kind": kind}
    for param in params:
        name, sep, raw = param.partition("=")
        if not sep or name.strip() in ("kind", "rate", "model", "path", "times"):
            raise ValueError(f"bad x-sim-fault parameter {param!r}")
        data[name.strip()] = raw.strip()
    return FaultRule.from_dict(data)


class FaultInjector:
    """Picks at most one fault per request from the rules, with one seeded RNG.

    ``clock`` (monotonic seconds) times the rules' ``lasts``: each rule's clock starts
    when it is installed (``set_rules``, ``add``, ``reset``).
    """

    __slots__ = ("_clock", "_fired", "_installed", "_rng", "_seed", "rules")

    def __init__(
        self, rules: Iterable[FaultRule] = (), seed: int = 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._clock = clock
        self.rules: list[FaultRule] = list(rules)
        self._fired = [0] * len(self.rules)
        self._installed = [clock()] * len(self.rules)

    def set_rules(self, rules: Iterable[FaultRule]) -> None:
        self.rules = list(rules)
        self._fired = [0] * len(self.rules)
        self._installed = [self._clock()] * len(self.rules)

    def add(self, rule: FaultRule) -> None:
        self.rules.append(rule)
        self._fired.append(0)
        self._installed.append(self._clock())

    def reset(self, rules: Iterable[FaultRule], seed: int | None = None) -> None:
        self._seed = self._seed if seed is None else seed
        self._rng = random.Random(self._seed)
        self.set_rules(rules)

    def pick(self, path: str, model: str, stream: bool, last_is_assistant: bool = False) -> FaultRule | None:
        for i, rule in enumerate(self.rules):
            if not rule.matches(path, model, stream, last_is_assistant):
                continue
            if rule.times is not None and self._fired[i] >= rule.times:
                continue
            if rule.lasts is not None and self._clock() - self._installed[i] >= rule.lasts:
                continue
            if rule.rate >= 1.0 or self._rng.random() < rule.rate:
                self._fired[i] += 1
                return rule
        return None
