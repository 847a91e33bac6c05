"""Typed readers over one TOML table for :mod:`greenlang_llm.gateway.config`.

Each reader checks one value's type and range and raises :class:`ConfigError`
naming the key the way a user finds it in the file (``providers[1].timeout``);
:meth:`_Table.finish` turns any key nobody read into an "unknown key" error, so
a typo is refused rather than ignored. Kept apart from the per-table
validators in ``config`` so those read like the file's layout, not like type checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._config_types import ConfigError


class _Table:
    """One TOML table with the path used in error messages, tracking which keys were read."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: must be a table")
        self.data = data
        self.where = where
        self.seen: set[str] = set()

    def _get(self, key: str) -> Any:
        self.seen.add(key)
        return self.data.get(key)

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get_str(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self._get(key)
        if value is None:
            if required:
                raise ConfigError(f"{self.path(key)}: required")
            return default
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self.path(key)}: must be a non-empty string")
        return value

    def req_str(self, key: str) -> str:
        value = self.get_str(key, required=True)
        assert value is not None
        return value

    def get_int(self, key: str, default: int | None, *, low: int = 0, high: int | None = None) -> int | None:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.path(key)}: must be an integer")
        if value < low or (high is not None and value > high):
            upper = f" and at most {high}" if high is not None else ""
            raise ConfigError(f"{self.path(key)}: must be at least {low}{upper}, got {value}")
        return value

    def get_float(self, key: str, default: float | None, *, positive: bool = True) -> float | None:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.path(key)}: must be a number")
        if value != value or value in (float("inf"), float("-inf")) or (positive and value <= 0):
            raise ConfigError(f"{self.path(key)}: must be a finite number > 0, got {value}")
        return float(value)

    def get_bool(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self.path(key)}: must be true or false")
        return value

    def str_list(self, key: str) -> list[str] | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{self.path(key)}: must be a list of non-empty strings")
        return list(value)

    def finish(self) -> None:
        extra = sorted(set(self.data) - self.seen)
        if extra:
            raise ConfigError(f"{self.path(extra[0])}: unknown key")


def _array(root: _Table, key: str) -> list[Any]:
    value = root._get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{key}: must be an array of tables ([[{key}]])")
    return value


def _env(env: Mapping[str, str], where: str, var: str) -> str:
    value = env.get(var)
    if not value:
        raise ConfigError(f"{where}: environment variable {var} is not set")
    return value


def _seconds(t: _Table, key: str, default: float) -> float:
    """A duration that may be 0."""
    value = t.get_float(key, default, positive=False)
    if value is None or value < 0:
        raise ConfigError(f"{t.path(key)}: must be a number >= 0, got {value}")
    return value
