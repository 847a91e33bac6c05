"""The stream keys of the gateway config: per provider and per route, validated with the key's name."""

from __future__ import annotations

import re
from typing import Any

import pytest
from gateway_support import ENV, config_dict

from greenlang_llm.gateway.config import ConfigError, parse_config
from greenlang_llm.gateway.service import GatewayService
from greenlang_llm.providers.stream_guard import StreamGuard


def _config(provider: dict[str, Any] | None = None, route: dict[str, Any] | None = None) -> dict[str, Any]:
    data = config_dict()
    data["providers"][0].update(provider or {})
    data["routes"][0].update(route or {})
    return data


def test_provider_and_route_stream_keys_are_read() -> None:
    config = parse_config(
        _config(
            {"first_token_timeout": 2.5, "idle_timeout": 4},
            {"first_token_timeout": 1.0, "idle_timeout": 0.5, "buffer_first_tokens": 8},
        ),
        ENV,
    )
    assert (config.providers[0].first_token_timeout, config.providers[0].idle_timeout) == (2.5, 4.0)
    route = config.routes[0]
    assert (route.first_token_timeout, route.idle_timeout, route.buffer_first_tokens) == (1.0, 0.5, 8)
    assert route.guards_streams
    assert not config.routes[1].guards_streams


@pytest.mark.parametrize(
    ("provider", "route", "where"),
    [
        ({"idle_timeout": 0}, None, "providers[0].idle_timeout"),
        ({"first_token_timeout": "fast"}, None, "providers[0].first_token_timeout"),
        (None, {"idle_timeout": -1}, "routes[0].idle_timeout"),
        (None, {"buffer_first_tokens": -1}, "routes[0].buffer_first_tokens"),
        (None, {"buffer_first_tokens": 2.5}, "routes[0].buffer_first_tokens"),
    ],
)
def test_bad_stream_keys_name_the_key(provider: Any, route: Any, where: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(where) + ":"):
        parse_config(_config(provider, route), ENV)


async def test_only_routes_with_stream_keys_wrap_their_providers_in_a_guard() -> None:
    from gateway_support import fakes

    config = parse_config(_config(route={"idle_timeout": 0.5, "buffer_first_tokens": 3}), ENV)
    service = GatewayService(config, providers=fakes())
    try:
        guarded = service.targets["default"].router.providers
        plain = service.targets["cheap"].router.providers
        assert all(isinstance(p, StreamGuard) for p in guarded.values())
        assert guarded["claude"].idle_timeout == 0.5  # type: ignore[attr-defined]
        assert not any(isinstance(p, StreamGuard) for p in plain.values())
        # members stay the shared providers (pricing, token counts, ledger names)
        assert not any(isinstance(p, StreamGuard) for _, p in service.targets["default"].members)
    finally:
        await service.close()
