"""The gateway's breakers escalate: ``circuit_breaker_base_timeout`` from [server] or the route."""

from __future__ import annotations

from gateway_support import ENV, config_dict, fakes

from greenlang_llm.gateway.config import parse_config
from greenlang_llm.gateway.targets import build_targets


def _breaker_periods(server: dict[str, object], route: dict[str, object]) -> dict[str, tuple[float, float]]:
    data = config_dict()
    data["server"].update(server)
    data["routes"][0].update(route)
    targets = build_targets(parse_config(data, ENV), fakes(), None)
    periods = {}
    for name in ("default", "cheap", "gpt-4o-mini"):
        breaker = targets[name].router.circuit_breaker("gpt")
        assert breaker is not None
        periods[name] = (breaker.base_timeout, breaker.recovery_timeout)
    return periods


def test_the_default_breaker_escalates_from_five_seconds_to_the_timeout() -> None:
    assert parse_config(config_dict(), ENV).server.circuit_breaker_base_timeout == 5.0
    assert set(_breaker_periods({}, {}).values()) == {(5.0, 60.0)}


def test_a_route_sets_its_own_base_and_the_rest_use_the_server_table() -> None:
    periods = _breaker_periods(
        {"circuit_breaker_base_timeout": 2.0, "circuit_breaker_timeout": 30.0},
        {"circuit_breaker_base_timeout": 0.5},
    )
    assert periods == {"default": (0.5, 30.0), "cheap": (2.0, 30.0), "gpt-4o-mini": (2.0, 30.0)}


def test_a_base_above_the_timeout_is_capped_by_it() -> None:
    periods = _breaker_periods({"circuit_breaker_base_timeout": 10.0}, {"circuit_breaker_timeout": 4.0})
    assert periods["default"] == (4.0, 4.0)
    assert periods["cheap"] == (10.0, 60.0)
