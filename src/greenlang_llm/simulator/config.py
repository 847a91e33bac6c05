"""Simulator configuration: per-model behaviour, fault rules, keys; loaded from TOML or a dict.

One server plays several providers and models, so behaviour is keyed by the
request's ``model``; models not listed use ``[defaults]``. Keys are kept only as
SHA-256 hashes: the simulator never stores or prints a key it receives.

Example ``faults.toml``::

    seed = 7
    valid_keys_sha256 = ["<hex of sha256(key)>"]   # optional: other keys get 401

    [defaults]
    reply_tokens = 16        # words in a reply before max_tokens cuts it
    latency_ms = 0           # before the answer (or the first stream event)
    jitter_ms = 0            # + uniform(0, jitter_ms), seeded
    token_ms = 0             # between streamed tokens

    [models."claude-sonnet-4-6"]
    reply_tokens = 40
    cache_read_tokens = 2048

    [models."gpt-*"]         # glob keys match models not listed by name
    token_ms = 5

    [[faults]]
    kind = "rate_limit"      # see faults.KINDS
    rate = 0.2
    model = "gpt-4o-mini"
    retry_after = 2
"""

from __future__ import annotations

import fnmatch
import hashlib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .faults import FaultRule

__all__ = ["ModelBehaviour", "SimulatorConfig", "hash_key"]


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")


def hash_key(key: str) -> str:
    """The only form in which the simulator keeps an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ModelBehaviour:
    """How one model answers. Token counts are documented in docs/simulator.md."""

    reply_tokens: int = 16
    """Words (= output tokens) in a full reply; ``max_tokens`` below this cuts it (finish ``length``)."""
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    token_ms: float = 0.0
    cache_read_tokens: int = 0
    """A simulated cached prompt prefix, added to every request's input tokens as cache reads."""
    cache_write_tokens: int = 0
    context_window: int = 200_000
    """Input tokens above this answer the API's context-length 400."""
    echo_words: int = 0
    """A continuation of an assistant prefill first repeats the prefill's last N words (see replies.py)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"model behaviour {f.name} must be a non-negative number, got {value!r}")
        if self.reply_tokens < 1:
            raise ValueError("reply_tokens must be at least 1")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: ModelBehaviour | None = None) -> ModelBehaviour:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model setting(s): {', '.join(sorted(unknown))}")
        return replace(base or cls(), **dict(data))


@dataclass(slots=True)
class SimulatorConfig:
    seed: int = 0
    defaults: ModelBehaviour = field(default_factory=ModelBehaviour)
    models: dict[str, ModelBehaviour] = field(default_factory=dict)
    faults: list[FaultRule] = field(default_factory=list)
    valid_keys_sha256: frozenset[str] = frozenset()
    """When non-empty, only keys whose SHA-256 is listed are accepted (others: 401)."""
    require_key: bool = True
    """A request with no key at all gets 401, as from the real APIs."""
    strict_models: bool = False
    """When True, a model not in ``models`` gets the API's 404; else it uses ``defaults``."""
    enforce_version_rules: bool = True
    """Anthropic ``anthropic-version: 2026-10-21`` rejects temperature/top_p/top_k (fixture rule 11)."""

    def behaviour(self, model: str) -> ModelBehaviour:
        """The model's own settings, else the first glob key that matches (``"claude-*"``), else defaults."""
        found = self.models.get(model)
        if found is not None:
            return found
        for pattern, behaviour in self.models.items():
            if _is_glob(pattern) and fnmatch.fnmatchcase(model, pattern):
                return behaviour
        return self.defaults

    def knows(self, model: str) -> bool:
        return model in self.models or any(_is_glob(p) and fnmatch.fnmatchcase(model, p) for p in self.models)

    def model_ids(self) -> list[str]:
        """Listed models without the glob patterns (for ``GET /v1/models``)."""
        return [m for m in self.models if not _is_glob(m)]

    @staticmethod
    def hash_keys(keys: Iterable[str]) -> frozenset[str]:
        return frozenset(hash_key(k) for k in keys)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimulatorConfig:
        data = dict(data)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown simulator setting(s): {', '.join(sorted(unknown))}")
        defaults = ModelBehaviour.from_dict(data.get("defaults", {}))
        models = {
            str(name): ModelBehaviour.from_dict(values, defaults)
            for name, values in dict(data.get("models", {})).items()
        }
        return cls(
            seed=int(data.get("seed", 0)),
            defaults=defaults,
            models=models,
            faults=[FaultRule.from_dict(f) for f in data.get("faults", [])],
            valid_keys_sha256=frozenset(str(h).lower() for h in data.get("valid_keys_sha256", [])),
            require_key=bool(data.get("require_key", True)),
            strict_models=bool(data.get("strict_models", False)),
            enforce_version_rules=bool(data.get("enforce_version_rules", True)),
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> SimulatorConfig:
        with open(path, "rb") as fh:
            return cls.from_dict(tomllib.load(fh))
