"""FaultRule.lasts: a fault that applies for its first N seconds after it was installed or reset."""

from __future__ import annotations

import pytest

from greenlang_llm.simulator.faults import FaultInjector, FaultRule, parse_fault_header


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_a_down_rule_with_lasts_stops_firing_after_that_many_seconds() -> None:
    clock = Clock()
    injector = FaultInjector([FaultRule("down", model="m", lasts=6.0)], clock=clock)
    assert injector.pick("/v1/messages", "m", False) is not None
    clock.now += 5.9
    assert injector.pick("/v1/messages", "m", False) is not None
    clock.now += 0.1
    assert injector.pick("/v1/messages", "m", False) is None  # healthy from now on
    assert injector.pick("/v1/messages", "other", False) is None


def test_the_clock_of_a_rule_starts_when_it_is_installed_or_reset() -> None:
    clock = Clock()
    injector = FaultInjector([FaultRule("down", lasts=2.0)], clock=clock)
    clock.now += 10
    assert injector.pick("/v1/messages", "m", False) is None
    injector.add(FaultRule("http_500", lasts=2.0))  # added now: fires for the next 2 s
    assert injector.pick("/v1/messages", "m", False).kind == "http_500"  # type: ignore[union-attr]
    injector.reset([FaultRule("down", lasts=2.0)])
    assert injector.pick("/v1/messages", "m", False).kind == "down"  # type: ignore[union-attr]
    clock.now += 2
    assert injector.pick("/v1/messages", "m", False) is None


def test_lasts_is_read_from_config_and_checked() -> None:
    assert FaultRule.from_dict({"kind": "down", "lasts": "6"}).lasts == 6.0
    assert FaultRule("down").lasts is None
    assert parse_fault_header("down;lasts=3").lasts == 3.0
    with pytest.raises(ValueError, match="lasts"):
        FaultRule("down", lasts=-1.0)
