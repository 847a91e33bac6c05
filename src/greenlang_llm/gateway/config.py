"""The gateway's TOML configuration: loaded once at start, validated, then immutable.

Every validation error names the offending key the way a user would find it in
the file (``providers[1].type: must be 'anthropic' or 'openai'``), because a
gateway that refuses to start should say exactly what to fix. Unknown keys are
errors too: a typo such as ``modle_id`` would otherwise be silently ignored.
Secrets are never in the file: provider keys, virtual keys and the admin key
are named by environment variables and read here, at start, once.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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

STRATEGIES = ("priority", "least_cost", "least_latency", "round_robin", "random")
PROVIDER_TYPES = ("anthropic", "openai")


class ConfigError(ValueError):
    """A bad configuration; the message names the key (one line, no secret)."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 4000
    admin_key_env: str = "GREENLANG_ADMIN_KEY"
    database_url: str = "sqlite:///greenlang_llm.db"
    redis_url: str | None = None
    redis_prefix: str = "greenlang:"
    reservation_ttl_s: float = 600.0
    max_body_bytes: int = 1_048_576
    alert_webhook_url: str | None = None
    shutdown_timeout: float = 30.0
    health_check_interval: float = 30.0
    """Seconds between the routers' provider health probes (``GET …/models``); 0 turns them off."""
    circuit_breaker_threshold: int = 5
    """Consecutive failures that open a provider's breaker (a route may set its own)."""
    circuit_breaker_timeout: float = 60.0
    """Seconds an open breaker waits before one trial call (a route may set its own)."""
    header_timeout: float = 5.0
    """Seconds from a connection's start (or a request's first byte) to the end of its headers (408)."""
    body_timeout: float = 5.0
    """Seconds from the end of a request's headers to the end of its body, the whole body (408)."""
    max_header_bytes: int = 65_536
    """Request line plus headers; more is refused with 431."""
    limit_concurrency: int | None = 1000
    """Open connections (or running requests) past which uvicorn answers 503; 0 in the file: no limit."""
    durable_replies: bool = True
    """No reply (or final stream event) goes out before its ledger record is durable.

    False trades that promise for a little latency: a kill right after a reply may lose its record."""


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    type: str
    model_id: str
    api_key_env: str | None = None
    base_url: str | None = None
    priority: int = 1
    max_retries: int = 1
    timeout: float = 60.0
    api_key: str | None = field(default=None, repr=False)
    """Resolved from ``api_key_env`` at load time; never printed (``repr=False``)."""
    first_token_timeout: float | None = None
    """Streams: seconds to the first text delta (None: ``timeout``); see docs/streaming.md."""
    idle_timeout: float | None = None
    """Streams: longest gap between two text deltas (None: ``timeout``)."""
    base_delay: float = 1.0
    """Backoff before the provider's retry n: ``base_delay * 2**n`` (jittered), at most ``max_delay``."""
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    """A ``retry-after`` longer than this is not waited for: the error goes to the router (failover)."""


@dataclass(frozen=True, slots=True)
class RouteConfig:
    name: str
    providers: tuple[str, ...]
    strategy: str = "priority"
    max_retries: int | None = None
    first_token_timeout: float | None = None
    """Streams on this route: tighter than the providers' own when set (docs/streaming.md)."""
    idle_timeout: float | None = None
    buffer_first_tokens: int = 0
    """Hold back the first N text deltas so a failure among them still fails over."""
    timeout: float | None = None
    """Seconds for the whole chain (retries, failover, backoff): each request's deadline, unless the
    client asks for less (``x-greenlang-timeout``); None: no deadline beyond the providers' own."""
    circuit_breaker_threshold: int | None = None
    """None: ``[server] circuit_breaker_threshold``."""
    circuit_breaker_timeout: float | None = None
    """None: ``[server] circuit_breaker_timeout``."""
    continue_on_failure: bool = True
    """A stream cut after its first text is finished by the next provider (docs/routing.md)."""

    @property
    def guards_streams(self) -> bool:
        return bool(self.first_token_timeout or self.idle_timeout or self.buffer_first_tokens)


@dataclass(frozen=True, slots=True)
class KeyConfig:
    tenant: str
    agent: str
    key_sha256: str = field(repr=False)
    routes: frozenset[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    source: str = ""
    """Where the key came from (``keys[0] (ACME_KEY)``), for messages; never the key itself."""


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    tenant: str
    monthly_limit_usd: float
    alert_thresholds: tuple[float, ...] = (0.8, 0.9, 1.0)
    hard_limit: bool = False


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    providers: tuple[ProviderConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    keys: tuple[KeyConfig, ...] = ()
    budgets: tuple[BudgetConfig, ...] = ()
    admin_key_sha256: str | None = field(default=None, repr=False)


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# --- small typed readers: each raises ConfigError naming the key -------------------------------


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


def _seconds(t: _Table, key: str, default: float) -> float:
    """A duration that may be 0."""
    value = t.get_float(key, default, positive=False)
    if value is None or value < 0:
        raise ConfigError(f"{t.path(key)}: must be a number >= 0, got {value}")
    return value


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
