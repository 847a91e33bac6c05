"""The gateway's TOML configuration: loaded once at start, validated, then immutable.

Every validation error names the offending key the way a user would find it in
the file (``providers[1].type: must be 'anthropic' or 'openai'``), because a
gateway that refuses to start should say exactly what to fix. Unknown keys are
errors too: a typo such as ``modle_id`` would otherwise be silently ignored.
Secrets are never in the file: provider keys, virtual keys and the admin key
are named by environment variables and read here, at start, once.

Each table of the file is a msgspec Struct whose annotations are its rules (type,
range, pattern; unknown keys forbidden) and whose ``Meta(description=...)`` is the
reference for each key. The same classes give the JSON Schema editors validate
against (:func:`json_schema`, ``greenlang-llm serve --print-schema``,
``docs/config.schema.json``), so an editor and the loader agree. What one key's
type cannot say — unique names, a route naming a known provider, exactly one of
``key_env``/``key_sha256``, environment variables that must be set — is plain
code in :func:`parse_config`, after the conversion.

``ServerConfig``, ``RouteConfig`` and ``BudgetConfig`` are their tables as written.
``ProviderConfig`` is a ``[[providers]]`` table plus the key read from
``api_key_env``; ``KeyConfig`` is a ``[[keys]]`` table reduced to the key's digest;
``GatewayConfig`` is the whole file with those resolved. All are frozen.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from msgspec import Meta, Struct, field
from msgspec.structs import asdict, replace

from .._typed_config import ConfigError, convert
from .._typed_config import json_schema as _json_schema
from .._typed_config import json_schema_text as _json_schema_text

__all__ = [
    "PROVIDER_TYPES",
    "STRATEGIES",
    "BudgetConfig",
    "ConfigError",
    "ConfigFile",
    "GatewayConfig",
    "KeyConfig",
    "KeyTable",
    "ProviderConfig",
    "ProviderTable",
    "RouteConfig",
    "ServerConfig",
    "json_schema",
    "json_schema_text",
    "load_config",
    "parse_config",
]

ProviderType = Literal["anthropic", "openai"]
StrategyName = Literal["priority", "least_cost", "least_latency", "round_robin", "random"]
PROVIDER_TYPES: tuple[str, ...] = get_args(ProviderType)
STRATEGIES: tuple[str, ...] = get_args(StrategyName)

SCHEMA_TITLE = "greenlang-llm gateway configuration (greenlang-llm.toml)"

# --- the kinds of value a key takes --------------------------------------------------------------

Text = Annotated[str, Meta(pattern=r"\S")]
"""A non-empty string (not only spaces)."""
Seconds = Annotated[float, Meta(gt=0)]
"""A positive duration in seconds."""
Delay = Annotated[float, Meta(ge=0)]
"""A duration in seconds that may be 0."""
Count = Annotated[int, Meta(ge=0)]
AtLeastOne = Annotated[int, Meta(ge=1)]
Names = tuple[Text, ...]


def _doc(text: str, **extra: Any) -> Meta:
    """A key's description (editors show it) and, in ``extra``, its own error wording."""
    return Meta(description=text, extra=extra or None)


def _url(pattern: str, text: str, invalid: str) -> Meta:
    return Meta(pattern=pattern, description=text, extra={"invalid": invalid})


DatabaseUrl = Annotated[
    str,
    _url(
        "^(sqlite|postgresql|postgres)://",
        "The cost ledger: sqlite:///path or postgresql://user@host/db (GREENLANG_DATABASE_URL wins).",
        "must be sqlite:///… or postgresql://…",
    ),
]
RedisUrl = Annotated[
    str,
    _url(
        "^(redis|rediss|unix)://",
        "State shared by several replicas: budgets, limits, breakers (GREENLANG_REDIS_URL wins).",
        "must be redis://…, rediss://… or unix://…",
    ),
]
WebhookUrl = Annotated[
    str, _url("^https?://", "Budget alerts are POSTed here.", "must be an http:// or https:// URL")
]
BaseUrl = Annotated[
    str,
    _url(
        "^https?://",
        "Upstream URL (else the environment's or the public default).",
        "must start with http:// or https://",
    ),
]


class ServerConfig(Struct, frozen=True, forbid_unknown_fields=True):
    """[server]: where the gateway listens, where it keeps its ledger and state, its limits."""

    host: Annotated[Text, _doc("Bind address.")] = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535, description="Port (0: any free port).")] = 4000
    admin_key_env: Annotated[Text, _doc("Environment variable holding the admin key.")] = (
        "GREENLANG_ADMIN_KEY"
    )
    database_url: DatabaseUrl = "sqlite:///greenlang_llm.db"
    redis_url: RedisUrl | None = None
    redis_prefix: Annotated[Text, _doc("Prefix of every Redis key the gateway writes.")] = "greenlang:"
    reservation_ttl_s: Annotated[Seconds, _doc("Seconds an unsettled budget reservation lives.")] = 600.0
    max_body_bytes: Annotated[int, Meta(ge=1024, description="Largest request body (413 above).")] = 1_048_576
    alert_webhook_url: WebhookUrl | None = None
    shutdown_timeout: Annotated[Seconds, _doc("Seconds in-flight requests get on shutdown.")] = 30.0
    health_check_interval: Annotated[
        Delay,
        _doc(
            "Seconds between the routers' provider health probes (GET …/models); 0 turns them off.",
            invalid="must be a number >= 0 (0: no probes), got {value!r}",
        ),
    ] = 30.0
    circuit_breaker_threshold: Annotated[
        AtLeastOne, _doc("Consecutive failures that open a provider's breaker (a route may set its own).")
    ] = 5
    circuit_breaker_timeout: Annotated[
        Seconds,
        _doc("Longest an open breaker waits before one trial call: the cap of the escalating waits"
             " (a route may set its own)."),
    ] = 60.0
    circuit_breaker_base_timeout: Annotated[
        Seconds,
        _doc("An open breaker's first wait before one trial call; each failed trial adds it again, up"
             " to circuit_breaker_timeout, and a passed one resets it (a route may set its own)."),
    ] = 5.0
    header_timeout: Annotated[
        Seconds,
        _doc("Seconds from a connection's start (or a request's first byte) to the end of its headers."),
    ] = 5.0
    body_timeout: Annotated[
        Seconds, _doc("Seconds from the end of a request's headers to the end of its whole body.")
    ] = 5.0
    max_header_bytes: Annotated[
        int, Meta(ge=1024, description="Request line plus headers; more is refused with 431.")
    ] = 65_536
    limit_concurrency: Annotated[
        Count | None,
        _doc("Open connections (or running requests) past which uvicorn answers 503; 0: no limit."),
    ] = 1000
    """None (written 0 in the file): no limit."""
    durable_replies: Annotated[
        bool,
        _doc(
            "No reply (or final stream event) goes out before its ledger record is durable. False trades"
            " that promise for a little latency: a kill right after a reply may lose its record."
        ),
    ] = True


class ProviderTable(Struct, frozen=True, forbid_unknown_fields=True):
    """[[providers]]: one deployment of one model, as written in the file."""

    name: Annotated[Text, _doc("The provider's name in routes, headers and the ledger.")]
    type: Annotated[ProviderType, _doc("The API it speaks (openai: any OpenAI-compatible base_url).")]
    model_id: Annotated[Text, _doc("The upstream model.")]
    api_key_env: Annotated[Text | None, _doc("Environment variable holding the API key.")] = None
    base_url: BaseUrl | None = None
    priority: Annotated[Count, _doc("Order under the priority strategy (lower first).")] = 1
    max_retries: Annotated[
        int, Meta(ge=0, le=10, description="Retries on this provider before the router fails over.")
    ] = 1
    timeout: Annotated[Seconds, _doc("Seconds for the whole upstream call.")] = 60.0
    first_token_timeout: Annotated[
        Seconds | None, _doc("Streams: seconds to the first text delta (unset: timeout).")
    ] = None
    idle_timeout: Annotated[
        Seconds | None, _doc("Streams: longest gap between two text deltas (unset: timeout).")
    ] = None
    base_delay: Annotated[
        Delay, _doc("Backoff before retry n: base_delay * 2**n (jittered), at most max_delay.")
    ] = 1.0
    max_delay: Annotated[Delay, _doc("Longest backoff between two retries.")] = 8.0
    max_retry_after: Annotated[
        Delay, _doc("A longer retry-after is not waited for: the error goes to the router (failover).")
    ] = 60.0
    supports_prefill: Annotated[
        bool | None,
        _doc(
            "Whether the model accepts a trailing assistant turn (a cut stream's continuation prefill);"
            " false: continue it by restarting the answer without one. Unset: the table of known models"
            " (docs/routing.md), else try and learn from a 400."
        ),
    ] = None


class ProviderConfig(ProviderTable, frozen=True):
    """A ``[[providers]]`` table with its API key read from ``api_key_env`` (never printed)."""

    api_key: str | None = None

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in asdict(self).items() if k != "api_key")
        return f"ProviderConfig({shown})"


class RouteConfig(Struct, frozen=True, forbid_unknown_fields=True):
    """[[routes]]: what a request's "model" names, and how its providers are tried."""

    name: Annotated[Text, _doc("The name requests give as their model.")]
    providers: Annotated[
        Names,
        Meta(
            min_length=1,
            description="The providers this route may use, by name.",
            extra={"required": "required (a non-empty list of provider names)"},
            extra_json_schema={"uniqueItems": True},
        ),
    ]
    strategy: Annotated[
        StrategyName,
        _doc(
            "How the providers are ordered for each request.",
            # in the declared order, as the docs list them (msgspec sorts a Literal's values)
            invalid=f"must be one of {', '.join(STRATEGIES)}; got {{value!r}}",
        ),
    ] = "priority"
    max_retries: Annotated[
        Annotated[int, Meta(ge=0, le=20)] | None, _doc("Extra providers tried after the first.")
    ] = None
    first_token_timeout: Annotated[
        Seconds | None, _doc("Streams on this route: tighter than the providers' own when set.")
    ] = None
    idle_timeout: Annotated[
        Seconds | None, _doc("Streams on this route: longest gap between two text deltas.")
    ] = None
    buffer_first_tokens: Annotated[
        int, Meta(ge=0, le=10_000, description="Hold back the first N text deltas so a failure among them"
                  " still fails over.")
    ] = 0
    timeout: Annotated[
        Seconds | None,
        _doc(
            "Seconds for the whole chain (retries, failover, backoff): each request's deadline, unless the"
            " client asks for less (x-greenlang-timeout); unset: no deadline beyond the providers' own."
        ),
    ] = None
    circuit_breaker_threshold: Annotated[
        AtLeastOne | None, _doc("Unset: [server] circuit_breaker_threshold.")
    ] = None
    circuit_breaker_timeout: Annotated[
        Seconds | None, _doc("Unset: [server] circuit_breaker_timeout.")
    ] = None
    circuit_breaker_base_timeout: Annotated[
        Seconds | None, _doc("Unset: [server] circuit_breaker_base_timeout.")
    ] = None
    continue_on_failure: Annotated[
        bool, _doc("A stream cut after its first text is finished by the next provider (docs/routing.md).")
    ] = True
    context_window_fallbacks: Annotated[
        Names,
        _doc(
            "Routes or providers tried in order when this route's own providers all refused the prompt as"
            " too long (400 context length); a model that refused is never sent it again."
        ),
    ] = ()
    drop_params: Annotated[
        bool,
        _doc(
            "A hint the serving provider cannot honour (seed, presence_penalty, top_k...) is left out and"
            " named in x-greenlang-dropped-params; false: such a request is refused with a 400 instead"
            " (docs/fields.md)."
        ),
    ] = True

    @property
    def guards_streams(self) -> bool:
        return bool(self.first_token_timeout or self.idle_timeout or self.buffer_first_tokens)


class KeyTable(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[[keys]]: a virtual key callers use, as written (key_env or key_sha256)."""

    key_env: Annotated[Text | None, _doc("Environment variable holding the key.")] = None
    key_sha256: Annotated[
        Text | None,
        Meta(
            description="The SHA-256 of the key in hex (instead of key_env).",
            extra_json_schema={"pattern": "^[0-9a-fA-F]{64}$"},
        ),
    ] = None
    tenant: Annotated[Text, _doc("The tenant its calls are billed to.")]
    agent: Annotated[Text, _doc("The agent within the tenant.")] = "default"
    routes: Annotated[Names | None, _doc("Routes the key may use (omitted: all).")] = None
    rpm: Annotated[AtLeastOne | None, _doc("Requests per minute.")] = None
    tpm: Annotated[AtLeastOne | None, _doc("Tokens per minute.")] = None


class KeyConfig(Struct, frozen=True):
    """A virtual key as the gateway holds it: the key's digest, never the key."""

    tenant: str
    agent: str
    key_sha256: str
    routes: frozenset[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    source: str = ""
    """Where the key came from (``keys[0] (ACME_KEY)``), for messages; never the key itself."""

    def __repr__(self) -> str:
        return (
            f"KeyConfig(tenant={self.tenant!r}, agent={self.agent!r}, routes={self.routes!r}, "
            f"rpm={self.rpm!r}, tpm={self.tpm!r}, source={self.source!r})"
        )


class BudgetConfig(Struct, frozen=True, forbid_unknown_fields=True):
    """[[budgets]]: a tenant's monthly budget."""

    tenant: Annotated[Text, _doc("The tenant.")]
    monthly_limit_usd: Annotated[
        Seconds, _doc("US dollars per calendar month.", required="required (a number > 0)")
    ]
    alert_thresholds: Annotated[
        tuple[Annotated[float, Meta(gt=0, le=2)], ...],
        _doc(
            "Fractions of the limit at which an alert fires, ascending.",
            invalid="must be a list of numbers in (0, 2]",
        ),
    ] = (0.8, 0.9, 1.0)
    hard_limit: Annotated[bool, _doc("Refuse with 429 instead of only alerting.")] = False


class ConfigFile(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A greenlang-llm gateway config file, as written (secrets are named, never included)."""

    server: Annotated[ServerConfig, _doc("The server: address, ledger, shared state, limits.")] = field(
        default_factory=ServerConfig
    )
    providers: Annotated[
        tuple[ProviderTable, ...],
        Meta(
            min_length=1,
            description="Upstream deployments, one model each (at least one).",
            extra={"required": "at least one [[providers]] entry is required"},
        ),
    ]
    routes: Annotated[tuple[RouteConfig, ...], _doc("Named routes over the providers.")] = ()
    keys: Annotated[tuple[KeyTable, ...], _doc("Virtual keys callers use.")] = ()
    budgets: Annotated[tuple[BudgetConfig, ...], _doc("Monthly budgets per tenant.")] = ()


class GatewayConfig(Struct, frozen=True):
    """A loaded config: the file's tables with every secret resolved (as a digest where possible)."""

    server: ServerConfig = field(default_factory=ServerConfig)
    providers: tuple[ProviderConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    keys: tuple[KeyConfig, ...] = ()
    budgets: tuple[BudgetConfig, ...] = ()
    admin_key_sha256: str | None = None

    def __repr__(self) -> str:
        return (
            f"GatewayConfig(server={self.server!r}, providers={self.providers!r}, routes={self.routes!r}, "
            f"keys={self.keys!r}, budgets={self.budgets!r})"
        )


# --- loading ---------------------------------------------------------------------------------------


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def json_schema() -> dict[str, Any]:
    """The config file's JSON Schema (what ``--print-schema`` prints and docs/config.schema.json holds)."""
    return _json_schema(ConfigFile, SCHEMA_TITLE)


def json_schema_text() -> str:
    """:func:`json_schema` as committed: two-space indent, a final newline."""
    return _json_schema_text(ConfigFile, SCHEMA_TITLE)


_ENV_OVERRIDES = (("database_url", "GREENLANG_DATABASE_URL"), ("redis_url", "GREENLANG_REDIS_URL"))


def _with_env_overrides(data: Mapping[str, Any], env: Mapping[str, str]) -> Mapping[str, Any]:
    """``GREENLANG_DATABASE_URL`` / ``GREENLANG_REDIS_URL`` replace the file's (one image, many replicas).

    Applied before the conversion, so an override is checked like the file's value."""
    overrides = {key: env[var] for key, var in _ENV_OVERRIDES if env.get(var)}
    server = data.get("server", {})
    if not overrides or not isinstance(server, Mapping):
        return data
    return {**data, "server": {**server, **overrides}}


def _env(env: Mapping[str, str], where: str, var: str) -> str:
    value = env.get(var)
    if not value:
        raise ConfigError(f"{where}: environment variable {var} is not set")
    return value


def _unique(items: Sequence[Any], attr: str, table: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        value = getattr(item, attr)
        if value in seen:
            raise ConfigError(f"{table}[{i}].{attr}: duplicate {value!r}")
        seen.add(value)


def _provider(table: ProviderTable, i: int, env: Mapping[str, str]) -> ProviderConfig:
    if table.max_delay < table.base_delay:
        raise ConfigError(
            f"providers[{i}].max_delay: must be >= base_delay ({table.base_delay}), got {table.max_delay}"
        )
    api_key = _env(env, f"providers[{i}].api_key_env", table.api_key_env) if table.api_key_env else None
    return ProviderConfig(**asdict(table), api_key=api_key)


def _check_route(route: RouteConfig, i: int, provider_names: set[str], route_names: set[str]) -> None:
    for name in route.providers:
        if name not in provider_names:
            raise ConfigError(f"routes[{i}].providers: unknown provider {name!r}")
    if len(set(route.providers)) != len(route.providers):
        raise ConfigError(f"routes[{i}].providers: a provider is listed twice")
    for name in route.context_window_fallbacks:
        if name == route.name or (name not in route_names and name not in provider_names):
            raise ConfigError(
                f"routes[{i}].context_window_fallbacks: {name!r} is not another route nor a provider")


def _key(table: KeyTable, i: int, env: Mapping[str, str], route_names: set[str]) -> KeyConfig:
    if (table.key_env is None) == (table.key_sha256 is None):
        raise ConfigError(f"keys[{i}]: set exactly one of key_env or key_sha256")
    if table.key_env is not None:
        digest = sha256_hex(_env(env, f"keys[{i}].key_env", table.key_env))
        source = f"keys[{i}] ({table.key_env})"
    else:
        assert table.key_sha256 is not None
        digest = table.key_sha256.lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(f"keys[{i}].key_sha256: must be 64 hex digits (the SHA-256 of the key)")
        source = f"keys[{i}]"
    for route in table.routes or ():
        if route not in route_names:
            raise ConfigError(f"keys[{i}].routes: unknown route {route!r}")
    return KeyConfig(
        tenant=table.tenant,
        agent=table.agent,
        key_sha256=digest,
        routes=frozenset(table.routes) if table.routes is not None else None,
        rpm=table.rpm,
        tpm=table.tpm,
        source=source,
    )


def _check_budget(budget: BudgetConfig, i: int) -> None:
    if sorted(set(budget.alert_thresholds)) != list(budget.alert_thresholds):
        raise ConfigError(f"budgets[{i}].alert_thresholds: must be ascending without repeats")


def parse_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Validate a parsed TOML document; ``env`` defaults to ``os.environ``."""
    env = os.environ if env is None else env
    file = convert(_with_env_overrides(data, env), ConfigFile)
    server = file.server
    if server.limit_concurrency == 0:
        server = replace(server, limit_concurrency=None)
    providers = tuple(_provider(p, i, env) for i, p in enumerate(file.providers))
    _unique(providers, "name", "providers")
    names = {p.name for p in providers}
    for i, route in enumerate(file.routes):
        _check_route(route, i, names, {r.name for r in file.routes})
    _unique(file.routes, "name", "routes")
    route_names = {r.name for r in file.routes}
    keys = tuple(_key(k, i, env, route_names) for i, k in enumerate(file.keys))
    _unique(keys, "key_sha256", "keys")
    for i, budget in enumerate(file.budgets):
        _check_budget(budget, i)
    _unique(file.budgets, "tenant", "budgets")
    admin = env.get(server.admin_key_env)
    return GatewayConfig(
        server=server,
        providers=providers,
        routes=file.routes,
        keys=keys,
        budgets=file.budgets,
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
