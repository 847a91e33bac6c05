"""Fault rules: validation, aliases, scoping, the header syntax and seeded repeatability."""

from __future__ import annotations

import pytest

from greenlang_llm.simulator.faults import KINDS, FaultInjector, FaultRule, parse_fault_header


def test_aliases_resolve_to_kinds() -> None:
    assert FaultRule("529").kind == "overloaded"
    assert FaultRule("429").kind == "rate_limit"
    assert FaultRule("timeout").kind == "slow"
    assert all(FaultRule(kind).kind == kind for kind in KINDS)


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "explode"},
        {"kind": "http_500", "rate": 1.5},
        {"kind": "slow", "delay": -1},
        {"rate": 0.5},
        {"kind": "http_500", "colour": "red"},
    ],
)
def test_bad_rules_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        FaultRule.from_dict(data)


def test_header_syntax_sets_parameters() -> None:
    rule = parse_fault_header("stream_cut; after=3")
    assert (rule.kind, rule.after, rule.rate) == ("stream_cut", 3, 1.0)
    assert parse_fault_header("rate_limit;retry_after=2.5").retry_after == 2.5
    with pytest.raises(ValueError):  # noqa: PT011
        parse_fault_header("500;rate=0.1")
    with pytest.raises(ValueError):  # noqa: PT011
        parse_fault_header("500;after")


def test_rules_are_scoped_by_model_path_and_stream() -> None:
    rule = FaultRule("http_500", model="a", path="/v1/messages")
    assert rule.matches("/v1/messages", "a", False, False)
    assert not rule.matches("/v1/messages", "b", False, False)
    assert not rule.matches("/v1/chat/completions", "a", False, False)
    assert not FaultRule("stream_cut").matches("/v1/messages", "a", False, False)
    assert FaultRule("stream_cut").matches("/v1/messages", "a", True, False)
    assert not FaultRule("prefill").matches("/v1/messages", "a", False, False)
    assert FaultRule("prefill").matches("/v1/messages", "a", False, True)


def test_same_seed_same_faults() -> None:
    def run(seed: int) -> list[str | None]:
        injector = FaultInjector([FaultRule("http_500", rate=0.3), FaultRule("429", rate=0.3)], seed)
        return [getattr(injector.pick("/v1/messages", "m", False), "kind", None) for _ in range(200)]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert 30 < first.count("http_500") < 90


def test_times_limits_how_often_a_rule_fires_and_reset_rearms_it() -> None:
    injector = FaultInjector([FaultRule("http_503", times=2)])
    picks = [injector.pick("/v1/messages", "m", False) for _ in range(4)]
    assert [p is not None for p in picks] == [True, True, False, False]
    injector.reset([FaultRule("http_503", times=2)])
    assert injector.pick("/v1/messages", "m", False) is not None


def test_first_matching_rule_wins_and_rules_can_be_added() -> None:
    injector = FaultInjector([FaultRule("http_500", model="x")])
    assert injector.pick("/p", "y", False) is None
    injector.add(FaultRule("auth"))
    assert getattr(injector.pick("/p", "y", False), "kind", None) == "auth"
    assert getattr(injector.pick("/p", "x", False), "kind", None) == "http_500"
    assert FaultRule.from_dict(FaultRule("auth").to_dict()) == FaultRule("auth")
