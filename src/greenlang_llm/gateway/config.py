"""The gateway's TOML configuration: loaded once at start, validated, then immutable.

Every validation error names the offending key the way a user would find it in
the file (``providers[1].type: must be 'anthropic' or 'openai'``), because a
gateway that refuses to start should say exactly what to fix. Unknown keys are
errors too: a typo such as ``modle_id`` would otherwise be silently ignored.
Secrets are never in the file: provider keys, virtual keys and the admin key
are named by environment variables and read here, at start, once.

This module is the public face and holds the validator of each table and the
loader; the records it builds are in ``_config_types``, the typed readers in
``_config_toml``.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ._config_toml import _array, _env, _seconds, _Table
from ._config_types import (
    PROVIDER_TYPES,
    STRATEGIES,
    BudgetConfig,
    ConfigError,
    GatewayConfig,
    KeyConfig,
    ProviderConfig,
    RouteConfig,
    ServerConfig,
)

__all__ = [
    "STRATEGIES",
    "BudgetConfig",
    "ConfigError",
    "GatewayConfig",
    "KeyConfig",
    "ProviderConfig",
    "RouteConfig",
    "ServerConfig",
    "load_config",
    "parse_config",
]


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# --- one validator per table, then the whole document ------------------------------------------


def _interval(t: _Table, default: float) -> float:
    value = t.get_float("health_check_interval", default, positive=False)
    if value is None or value < 0:
        raise ConfigError(f"server.health_check_interval: must be a number >= 0 (0: no probes), got {value}")
    return value


def _server(data: Any, env: Mapping[str, str]) -> ServerConfig:
    """``GREENLANG_DATABASE_URL`` / ``GREENLANG_REDIS_URL`` override the file (one image, many replicas)."""
    t = _Table(data if data is not None else {}, "server")
    d = ServerConfig()
    cfg = ServerConfig(
        host=t.get_str("host", d.host) or d.host,
        port=t.get_int("port", d.port, low=0, high=65535) or 0,
        admin_key_env=t.get_str("admin_key_env", d.admin_key_env) or d.admin_key_env,
        database_url=t.get_str("database_url", d.database_url) or d.database_url,
        redis_url=t.get_str("redis_url"),
        redis_prefix=t.get_str("redis_prefix", d.redis_prefix) or d.redis_prefix,
        reservation_ttl_s=t.get_float("reservation_ttl_s", d.reservation_ttl_s) or d.reservation_ttl_s,
        max_body_bytes=t.get_int("max_body_bytes", d.max_body_bytes, low=1024) or d.max_body_bytes,
        alert_webhook_url=t.get_str("alert_webhook_url"),
        shutdown_timeout=t.get_float("shutdown_timeout", d.shutdown_timeout) or d.shutdown_timeout,
        health_check_interval=_interval(t, d.health_check_interval),
        circuit_breaker_threshold=t.get_int("circuit_breaker_threshold", d.circuit_breaker_threshold, low=1)
        or d.circuit_breaker_threshold,
        circuit_breaker_timeout=t.get_float("circuit_breaker_timeout", d.circuit_breaker_timeout)
        or d.circuit_breaker_timeout,
        header_timeout=t.get_float("header_timeout", d.header_timeout) or d.header_timeout,
        body_timeout=t.get_float("body_timeout", d.body_timeout) or d.body_timeout,
        max_header_bytes=t.get_int("max_header_bytes", d.max_header_bytes, low=1024) or d.max_header_bytes,
        limit_concurrency=t.get_int("limit_concurrency", d.limit_concurrency, low=0) or None,
        durable_replies=t.get_bool("durable_replies", d.durable_replies),
    )
    if env.get("GREENLANG_DATABASE_URL"):
        cfg = replace(cfg, database_url=env["GREENLANG_DATABASE_URL"])
    if env.get("GREENLANG_REDIS_URL"):
        cfg = replace(cfg, redis_url=env["GREENLANG_REDIS_URL"])
    if cfg.redis_url is not None and not cfg.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("server.redis_url: must be redis://…, rediss://… or unix://…")
    if cfg.alert_webhook_url and not cfg.alert_webhook_url.startswith(("http://", "https://")):
        raise ConfigError("server.alert_webhook_url: must be an http:// or https:// URL")
    if not cfg.database_url.startswith(("sqlite://", "postgresql://", "postgres://")):
        raise ConfigError("server.database_url: must be sqlite:///… or postgresql://…")
    t.finish()
    return cfg


def _provider(data: Any, i: int, env: Mapping[str, str]) -> ProviderConfig:
    t = _Table(data, f"providers[{i}]")
    name = t.req_str("name")
    ptype = t.req_str("type")
    if ptype not in PROVIDER_TYPES:
        raise ConfigError(f"providers[{i}].type: must be 'anthropic' or 'openai', got {ptype!r}")
    api_key_env = t.get_str("api_key_env")
    base_url = t.get_str("base_url")
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"providers[{i}].base_url: must start with http:// or https://")
    cfg = ProviderConfig(
        name=name,
        type=ptype,
        model_id=t.req_str("model_id"),
        api_key_env=api_key_env,
        base_url=base_url,
        priority=t.get_int("priority", 1, low=0) or 0,
        max_retries=t.get_int("max_retries", 1, low=0, high=10) or 0,
        timeout=t.get_float("timeout", 60.0) or 60.0,
        api_key=_env(env, f"providers[{i}].api_key_env", api_key_env) if api_key_env else None,
        first_token_timeout=t.get_float("first_token_timeout", None),
        idle_timeout=t.get_float("idle_timeout", None),
        base_delay=_seconds(t, "base_delay", 1.0),
        max_delay=_seconds(t, "max_delay", 8.0),
        max_retry_after=_seconds(t, "max_retry_after", 60.0),
    )
    if cfg.max_delay < cfg.base_delay:
        raise ConfigError(
            f"providers[{i}].max_delay: must be >= base_delay ({cfg.base_delay}), got {cfg.max_delay}"
        )
    t.finish()
    return cfg


def _route(data: Any, i: int, provider_names: set[str]) -> RouteConfig:
    t = _Table(data, f"routes[{i}]")
    name = t.req_str("name")
    strategy = t.get_str("strategy", "priority") or "priority"
    if strategy not in STRATEGIES:
        raise ConfigError(f"routes[{i}].strategy: must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    providers = t.str_list("providers")
    if not providers:
        raise ConfigError(f"routes[{i}].providers: required (a non-empty list of provider names)")
    for p in providers:
        if p not in provider_names:
            raise ConfigError(f"routes[{i}].providers: unknown provider {p!r}")
    if len(set(providers)) != len(providers):
        raise ConfigError(f"routes[{i}].providers: a provider is listed twice")
    cfg = RouteConfig(
        name=name,
        providers=tuple(providers),
        strategy=strategy,
        max_retries=t.get_int("max_retries", None, low=0, high=20),
        first_token_timeout=t.get_float("first_token_timeout", None),
        idle_timeout=t.get_float("idle_timeout", None),
        buffer_first_tokens=t.get_int("buffer_first_tokens", 0, low=0, high=10_000) or 0,
        timeout=t.get_float("timeout", None),
        circuit_breaker_threshold=t.get_int("circuit_breaker_threshold", None, low=1),
        circuit_breaker_timeout=t.get_float("circuit_breaker_timeout", None),
        continue_on_failure=t.get_bool("continue_on_failure", True),
    )
    t.finish()
    return cfg


def _key(data: Any, i: int, env: Mapping[str, str], route_names: set[str]) -> KeyConfig:
    t = _Table(data, f"keys[{i}]")
    key_env = t.get_str("key_env")
    key_hash = t.get_str("key_sha256")
    if (key_env is None) == (key_hash is None):
        raise ConfigError(f"keys[{i}]: set exactly one of key_env or key_sha256")
    if key_env is not None:
        digest = sha256_hex(_env(env, f"keys[{i}].key_env", key_env))
        source = f"keys[{i}] ({key_env})"
    else:
        assert key_hash is not None
        digest = key_hash.lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(f"keys[{i}].key_sha256: must be 64 hex digits (the SHA-256 of the key)")
        source = f"keys[{i}]"
    routes = t.str_list("routes")
    for r in routes or ():
        if r not in route_names:
            raise ConfigError(f"keys[{i}].routes: unknown route {r!r}")
    cfg = KeyConfig(
        tenant=t.req_str("tenant"),
        agent=t.get_str("agent", "default") or "default",
        key_sha256=digest,
        routes=frozenset(routes) if routes is not None else None,
        rpm=t.get_int("rpm", None, low=1),
        tpm=t.get_int("tpm", None, low=1),
        source=source,
    )
    t.finish()
    return cfg


def _budget(data: Any, i: int) -> BudgetConfig:
    t = _Table(data, f"budgets[{i}]")
    tenant = t.req_str("tenant")
    limit = t.get_float("monthly_limit_usd", None)
    if limit is None:
        raise ConfigError(f"budgets[{i}].monthly_limit_usd: required (a number > 0)")
    raw = t._get("alert_thresholds")
    thresholds: tuple[float, ...] = (0.8, 0.9, 1.0)
    if raw is not None:
        if not isinstance(raw, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and 0 < x <= 2 for x in raw
        ):
            raise ConfigError(f"budgets[{i}].alert_thresholds: must be a list of numbers in (0, 2]")
        if sorted(set(raw)) != list(raw):
            raise ConfigError(f"budgets[{i}].alert_thresholds: must be ascending without repeats")
        thresholds = tuple(float(x) for x in raw)
    cfg = BudgetConfig(tenant, limit, thresholds, t.get_bool("hard_limit", False))
    t.finish()
    return cfg


def _unique(items: list[Any], attr: str, table: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        value = getattr(item, attr)
        if value in seen:
            raise ConfigError(f"{table}[{i}].{attr}: duplicate {value!r}")
        seen.add(value)


def parse_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Validate a parsed TOML document; ``env`` defaults to ``os.environ``."""
    env = os.environ if env is None else env
    root = _Table(data, "")
    server = _server(root._get("server"), env)
    providers = [_provider(p, i, env) for i, p in enumerate(_array(root, "providers"))]
    if not providers:
        raise ConfigError("providers: at least one [[providers]] entry is required")
    _unique(providers, "name", "providers")
    names = {p.name for p in providers}
    routes = [_route(r, i, names) for i, r in enumerate(_array(root, "routes"))]
    _unique(routes, "name", "routes")
    keys = [_key(k, i, env, {r.name for r in routes}) for i, k in enumerate(_array(root, "keys"))]
    _unique(keys, "key_sha256", "keys")
    budgets = [_budget(b, i) for i, b in enumerate(_array(root, "budgets"))]
    _unique(budgets, "tenant", "budgets")
    root.finish()
    admin = env.get(server.admin_key_env)
    return GatewayConfig(
        server=server,
        providers=tuple(providers),
        routes=tuple(routes),
        keys=tuple(keys),
        budgets=tuple(budgets),
        admin_key_sha256=sha256_hex(admin) if admin else None,
    )


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read and validate a TOML file; every problem is a one-line ``ConfigError``."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(data, env)
