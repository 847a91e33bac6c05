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
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

from msgspec import Meta, Struct, field
from msgspec.structs import asdict, replace

from .._typed_config import ConfigError, convert
from .faults import FaultRule

__all__ = ["ModelBehaviour", "SimulatorConfig", "hash_key"]

Milliseconds = Annotated[float, Meta(ge=0)]
Tokens = Annotated[int, Meta(ge=0)]


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")


def hash_key(key: str) -> str:
    """The only form in which the simulator keeps an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


class ModelBehaviour(Struct, frozen=True, forbid_unknown_fields=True):
    """How one model answers. Token counts are documented in docs/simulator.md.

    The annotations are the rules a config file (or ``POST /_sim/models``) is checked
    against; building one in code takes the values as given."""

    reply_tokens: Annotated[int, Meta(ge=1)] = 16
    """Words (= output tokens) in a full reply; ``max_tokens`` below this cuts it (finish ``length``)."""
    latency_ms: Milliseconds = 0.0
    jitter_ms: Milliseconds = 0.0
    token_ms: Milliseconds = 0.0
    cache_read_tokens: Tokens = 0
    """A simulated cached prompt prefix, added to every request's input tokens as cache reads."""
    cache_write_tokens: Tokens = 0
    context_window: Tokens = 200_000
    """Input tokens above this answer the API's context-length 400."""
    echo_words: Tokens = 0
    """A continuation of an assistant prefill first repeats the prefill's last N words (see replies.py)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: ModelBehaviour | None = None) -> ModelBehaviour:
        """Checked settings over ``base`` (else the class defaults); a mistake is a :class:`ConfigError`."""
        return _over(base or cls(), data, convert(data, cls))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _over(base: ModelBehaviour, data: Mapping[str, Any], checked: ModelBehaviour) -> ModelBehaviour:
    """``base`` with the settings ``data`` names taken from ``checked`` (its converted form)."""
    return replace(base, **{name: getattr(checked, name) for name in data})


_FAULT_KEYS = frozenset(f.name for f in fields(FaultRule))


class SimulatorConfig(Struct, forbid_unknown_fields=True):
    """A simulator's settings; mutable, so a running simulator can be re-seeded and re-configured."""

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
    request_log_size: Tokens = 1000
    """How many of the latest API requests ``GET /_sim/requests`` keeps (0: none)."""

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
        """Checked like the gateway's config: one line naming the key (``models.m.latency_ms: ...``).

        A model's table sets only what differs from ``[defaults]``, so each model is the
        defaults with its own keys replaced."""
        config = convert(data, cls)
        for i, rule in enumerate(data.get("faults", ())):
            unknown = sorted(set(rule) - _FAULT_KEYS)
            if unknown:  # FaultRule is a dataclass: msgspec would skip a misspelt key
                raise ConfigError(f"faults[{i}].{unknown[0]}: unknown key")
        tables = data.get("models", {})
        config.models = {name: _over(config.defaults, tables[name], m) for name, m in config.models.items()}
        config.valid_keys_sha256 = frozenset(h.lower() for h in config.valid_keys_sha256)
        return config

    @classmethod
    def from_toml(cls, path: str | Path) -> SimulatorConfig:
        with open(path, "rb") as fh:
            return cls.from_dict(tomllib.load(fh))
