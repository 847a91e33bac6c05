"""The gateway configuration's records: what a validated TOML file becomes.

Frozen dataclasses (one per table of the file) plus :class:`ConfigError`, kept
apart from the TOML reading and validation so the shape of a configuration can
be read on its own; the field docstrings here are the reference for each key.
:mod:`greenlang_llm.gateway.config` builds them and re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "PROVIDER_TYPES",
    "STRATEGIES",
    "BudgetConfig",
    "ConfigError",
    "GatewayConfig",
    "KeyConfig",
    "ProviderConfig",
    "RouteConfig",
    "ServerConfig",
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
