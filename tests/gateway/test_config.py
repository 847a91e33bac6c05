"""Config validation: every error names the key; secrets come only from the environment."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from gateway_support import ENV, config_dict

from greenlang_llm.gateway.config import ConfigError, json_schema, json_schema_text, load_config, parse_config


def _error(data: dict[str, Any], env: dict[str, str] = ENV) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env)
    return str(info.value)


def test_valid_config_resolves_keys_to_hashes_only() -> None:
    config = parse_config(config_dict(), ENV)
    assert [p.name for p in config.providers] == ["claude", "gpt"]
    assert config.routes[0].providers == ("claude", "gpt")
    assert config.keys[0].key_sha256 == hashlib.sha256(ENV["ACME_KEY"].encode()).hexdigest()
    assert ENV["ACME_KEY"] not in repr(config)
    assert config.admin_key_sha256 == hashlib.sha256(ENV["GREENLANG_ADMIN_KEY"].encode()).hexdigest()
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 4000


def test_defaults_bind_loopback_and_sqlite_ledger() -> None:
    config = parse_config({"providers": [{"name": "a", "type": "openai", "model_id": "gpt-4o"}]}, {})
    assert config.server.host == "127.0.0.1"
    assert config.server.database_url == "sqlite:///greenlang_llm.db"
    assert config.admin_key_sha256 is None


def test_bad_provider_type_names_the_key() -> None:
    data = config_dict()
    data["providers"][1]["type"] = "cohere"
    assert _error(data).startswith("providers[1].type: must be 'anthropic' or 'openai'")


def test_unknown_key_is_an_error_naming_it() -> None:
    data = config_dict()
    data["providers"][0]["modle_id"] = "x"
    assert _error(data) == "providers[0].modle_id: unknown key"


def test_missing_key_env_names_the_variable() -> None:
    env = {k: v for k, v in ENV.items() if k != "BETA_KEY"}
    assert _error(config_dict(), env) == "keys[1].key_env: environment variable BETA_KEY is not set"


def test_missing_provider_api_key_env_names_the_variable() -> None:
    data = config_dict()
    data["providers"][0]["api_key_env"] = "ANTHROPIC_API_KEY"
    assert "providers[0].api_key_env: environment variable ANTHROPIC_API_KEY is not set" in _error(data)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["routes"][0].update(strategy="fastest"), "routes[0].strategy: must be one of"),
        (
            lambda d: d["routes"][0].update(providers=["claude", "nope"]),
            "routes[0].providers: unknown provider",
        ),
        (lambda d: d["routes"][0].update(providers=[]), "routes[0].providers: required"),
        (lambda d: d["keys"][1].update(routes=["missing"]), "keys[1].routes: unknown route 'missing'"),
        (lambda d: d["keys"][0].update(rpm=0), "keys[0].rpm: must be at least 1"),
        (lambda d: d["keys"][0].update(rpm="fast"), "keys[0].rpm: must be an integer"),
        (lambda d: d["keys"][0].update(key_sha256="ab"), "keys[0]: set exactly one of key_env or key_sha256"),
        (lambda d: d["providers"][0].update(base_url="ftp://x"), "providers[0].base_url: must start with"),
        (lambda d: d["providers"][1].update(name="claude"), "providers[1].name: duplicate 'claude'"),
        (lambda d: d["providers"][0].update(timeout=-1), "providers[0].timeout: must be a finite number > 0"),
        (lambda d: d["server"].update(port=70000), "server.port: must be at least 0 and at most 65535"),
        (lambda d: d["server"].update(database_url="mysql://x"), "server.database_url:"),
        (lambda d: d.update(budgets=[{"tenant": "acme"}]), "budgets[0].monthly_limit_usd: required"),
        (
            lambda d: d.update(
                budgets=[{"tenant": "acme", "monthly_limit_usd": 5, "alert_thresholds": [0.9, 0.5]}]
            ),
            "budgets[0].alert_thresholds: must be ascending",
        ),
        (lambda d: d["server"].update(header_timeout=0), "server.header_timeout: must be a finite number"),
        (lambda d: d["server"].update(body_timeout="5"), "server.body_timeout: must be a number"),
        (lambda d: d["server"].update(max_header_bytes=10), "server.max_header_bytes: must be at least 1024"),
        (lambda d: d["server"].update(limit_concurrency=-1), "server.limit_concurrency: must be at least 0"),
        (lambda d: d["server"].update(health_check_interval=-1), "server.health_check_interval: must be"),
        (lambda d: d["server"].update(circuit_breaker_threshold=0), "server.circuit_breaker_threshold"),
        (lambda d: d["routes"][0].update(circuit_breaker_timeout=0), "routes[0].circuit_breaker_timeout"),
        (lambda d: d["server"].update(circuit_breaker_base_timeout=0), "server.circuit_breaker_base_timeout"),
        (lambda d: d["routes"][1].update(circuit_breaker_base_timeout=-1), "routes[1].circuit_breaker_base"),
        (lambda d: d["providers"][0].update(base_delay=-1), "providers[0].base_delay: must be a number >= 0"),
        (lambda d: d["providers"][0].update(base_delay=4, max_delay=2), "providers[0].max_delay: must be >="),
        (lambda d: d["providers"][1].update(max_retry_after="1m"), "providers[1].max_retry_after: must be"),
        (lambda d: d["routes"][1].update(timeout=0), "routes[1].timeout: must be a finite number > 0"),
        (lambda d: d.update(providers=[]), "providers: at least one"),
        (lambda d: d.update(extra={}), "extra: unknown key"),
    ],
)
def test_each_bad_value_is_reported_with_its_path(mutate: Any, expected: str) -> None:
    data = config_dict()
    mutate(data)
    assert expected in _error(data)


def test_key_sha256_is_accepted_instead_of_env() -> None:
    digest = hashlib.sha256(b"sk-hashed").hexdigest()
    data = config_dict(keys=[{"key_sha256": digest.upper(), "tenant": "t"}])
    assert parse_config(data, ENV).keys[0].key_sha256 == digest


def test_load_config_reports_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)


def test_example_config_in_repo_is_valid() -> None:
    example = Path(__file__).parents[2] / "examples" / "greenlang-llm.toml"
    env = {
        "ACME_KEY": "a",
        "BETA_KEY": "b",
        "GREENLANG_ADMIN_KEY": "c",
        "ANTHROPIC_API_KEY": "x",
        "OPENAI_API_KEY": "y",
        "GREENLANG_DEMO_KEY": "d",
    }
    config = load_config(example, env)
    assert config.routes


def test_slow_client_limits_default_and_zero_concurrency_means_no_limit() -> None:
    server = parse_config(config_dict(), ENV).server
    assert (server.header_timeout, server.body_timeout) == (5.0, 5.0)
    assert (server.max_header_bytes, server.limit_concurrency) == (65536, 1000)
    data = config_dict()
    data["server"].update(header_timeout=2.5, body_timeout=30, max_header_bytes=8192, limit_concurrency=0)
    server = parse_config(data, ENV).server
    assert (server.header_timeout, server.body_timeout) == (2.5, 30.0)
    assert (server.max_header_bytes, server.limit_concurrency) == (8192, None)


# --- the published JSON Schema ------------------------------------------------------------------

SCHEMA_FILE = Path(__file__).parents[2] / "docs" / "config.schema.json"

VALID_DOCUMENTS = [
    'providers = [{ name = "a", type = "openai", model_id = "gpt-4o" }]',
    """
    [server]
    port = 0
    limit_concurrency = 0
    redis_url = "redis://127.0.0.1:6379/0"
    [[providers]]
    name = "claude"
    type = "anthropic"
    model_id = "claude-sonnet-4-6"
    idle_timeout = 2.5
    base_delay = 0
    [[routes]]
    name = "default"
    strategy = "least_cost"
    providers = ["claude"]
    [[keys]]
    key_sha256 = "%s"
    tenant = "acme"
    routes = ["default"]
    rpm = 60
    [[budgets]]
    tenant = "acme"
    monthly_limit_usd = 5
    alert_thresholds = [0.5, 1]
    """
    % ("ab" * 32),
]

INVALID_DOCUMENTS = [
    ("", "providers: at least one"),
    ("providers = []", "providers: at least one"),
    ('providers = [{ name = "a", type = "cohere", model_id = "m" }]', "providers[0].type: must be"),
    ('providers = [{ name = "a", type = "openai", modle_id = "m" }]', "providers[0].modle_id: unknown key"),
    ('providers = [{ name = "", type = "openai", model_id = "m" }]', "providers[0].name: must be a non"),
    (
        'providers = [{ name = "a", type = "openai", model_id = "m", timeout = 0 }]',
        "providers[0].timeout: must be a finite number > 0, got 0",
    ),
    (
        'providers = [{ name = "a", type = "openai", model_id = "m", base_url = "ftp://x" }]',
        "providers[0].base_url: must start with",
    ),
    (
        '[server]\nport = "4000"\n[[providers]]\nname = "a"\ntype = "openai"\nmodel_id = "m"',
        "server.port: must be an integer",
    ),
    (
        '[server]\ndatabase_url = "mysql://x"\n[[providers]]\nname = "a"\ntype = "openai"\nmodel_id = "m"',
        "server.database_url: must be sqlite",
    ),
    (
        'providers = [{ name = "a", type = "openai", model_id = "m" }]\n'
        'routes = [{ name = "r", providers = [] }]',
        "routes[0].providers: required",
    ),
    (
        'providers = [{ name = "a", type = "openai", model_id = "m" }]\n'
        'budgets = [{ tenant = "t", monthly_limit_usd = 1, alert_thresholds = [0.5, 3] }]',
        "budgets[0].alert_thresholds: must be a list of numbers in (0, 2]",
    ),
]


def test_committed_schema_is_what_the_code_generates() -> None:
    """docs/config.schema.json cannot go stale: ``greenlang-llm serve --print-schema`` regenerates it."""
    assert SCHEMA_FILE.read_text() == json_schema_text()
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"].endswith("2020-12/schema")
    tables = schema["$defs"]
    assert set(tables["ConfigFile"]["properties"]) == {"server", "providers", "routes", "keys", "budgets"}
    assert all(table["additionalProperties"] is False for table in tables.values())
    assert tables["ProviderTable"]["properties"]["type"]["enum"] == ["anthropic", "openai"]
    assert "api_key" not in tables["ProviderTable"]["properties"]  # secrets only through the environment
    assert tables["ServerConfig"]["properties"]["port"]["maximum"] == 65535


@pytest.mark.parametrize("text", VALID_DOCUMENTS)
def test_valid_documents_pass_the_loader_and_the_schema(text: str) -> None:
    data = tomllib.loads(textwrap.dedent(text))
    parse_config(data, {})
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    assert jsonschema_rs.validator_for(json_schema()).is_valid(data)


@pytest.mark.parametrize(("text", "expected"), INVALID_DOCUMENTS)
def test_invalid_documents_fail_the_loader_and_the_schema(text: str, expected: str) -> None:
    data = tomllib.loads(text)
    assert _error(data, {}).startswith(expected)
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    assert not jsonschema_rs.validator_for(json_schema()).is_valid(data)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["server"].update(reservation_ttl_s=math.inf), "server.reservation_ttl_s: must be a fin"),
        (lambda d: d["providers"][0].update(base_delay=math.nan), "providers[0].base_delay: must be a fin"),
        (lambda d: d["routes"][0].update(providers=["claude", ""]), "routes[0].providers: must be a list of"),
        (lambda d: d["providers"][0].pop("name"), "providers[0].name: required"),
        (lambda d: d.update(server=5), "server: must be a table"),
        (lambda d: d.update(keys={"a": 1}), "keys: must be an array of tables ([[keys]])"),
        (lambda d: d["server"].update(durable_replies=1), "server.durable_replies: must be true or false"),
    ],
)
def test_wording_follows_the_declared_type(mutate: Any, expected: str) -> None:
    data = config_dict()
    mutate(data)
    assert _error(data).startswith(expected)


def test_environment_urls_are_checked_like_the_files() -> None:
    env = {**ENV, "GREENLANG_DATABASE_URL": "mysql://db"}
    assert _error(config_dict(), env).startswith("server.database_url: must be sqlite")


def test_secrets_are_not_in_any_repr() -> None:
    env = {**ENV, "ANTHROPIC_API_KEY": "sk-canary-provider"}
    data = config_dict()
    data["providers"][0]["api_key_env"] = "ANTHROPIC_API_KEY"
    config = parse_config(data, env)
    assert config.providers[0].api_key == "sk-canary-provider"
    shown = repr(config)
    assert "sk-canary-provider" not in shown
    assert config.keys[0].key_sha256 not in shown
    assert config.admin_key_sha256 is not None
    assert config.admin_key_sha256 not in shown


def test_importing_the_package_does_not_load_the_validation_library() -> None:
    code = "import sys, greenlang_llm; assert 'msgspec' not in sys.modules, 'msgspec imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_strategy_lists_the_choices_in_the_documented_order() -> None:
    data = config_dict()
    data["routes"][0]["strategy"] = "fastest"
    assert _error(data) == (
        "routes[0].strategy: must be one of priority, least_cost, least_latency, round_robin, random; "
        "got 'fastest'"
    )


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_a_misspelt_key_is_unknown_whatever_its_value(value: float) -> None:
    """TOML's inf/nan under a key the config does not declare: the typo is the problem, not the number."""
    data = config_dict()
    data.setdefault("server", {})["timeout_seconds_typo"] = value
    assert _error(data) == "server.timeout_seconds_typo: unknown key"
    data = config_dict()
    data["providers"][0]["tmeout"] = value
    assert _error(data) == "providers[0].tmeout: unknown key"


def test_context_window_fallbacks_name_other_routes_or_providers() -> None:
    data = config_dict()
    data["routes"][0]["context_window_fallbacks"] = ["cheap", "claude"]
    route = parse_config(data, ENV).routes[0]
    assert route.context_window_fallbacks == ("cheap", "claude")
    for bad in ("default", "nope"):  # itself, or nothing known
        data["routes"][0]["context_window_fallbacks"] = [bad]
        assert _error(data) == (
            f"routes[0].context_window_fallbacks: {bad!r} is not another route nor a provider")
