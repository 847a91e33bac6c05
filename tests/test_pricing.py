"""Prices from the catalog, exact money, overrides, cache rates and unknown models."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenlang_llm import InvalidRequestError, pricing
from greenlang_llm.money import nanos_to_decimal, nanos_to_usd, usd_to_nanos
from greenlang_llm.pricing import (
    Cost,
    apply_price_overrides,
    context_window,
    cost_nanos,
    estimate_cost_usd,
    get_price,
    price_usage,
    set_price_override,
)


@pytest.fixture(autouse=True)
def _fresh_prices() -> Iterator[None]:
    pricing.clear_price_overrides()
    pricing.reset_price_cache()
    yield
    pricing.clear_price_overrides()
    pricing.reset_price_cache()


# The seed's 2024 table, USD per 1K tokens (input, output).
SEED_TABLE = {
    ("anthropic", "claude-3-opus"): ("0.015", "0.075"),
    ("anthropic", "claude-3-sonnet"): ("0.003", "0.015"),
    ("anthropic", "claude-3-haiku"): ("0.00025", "0.00125"),
    ("openai", "gpt-4-turbo"): ("0.01", "0.03"),
    ("openai", "gpt-4"): ("0.03", "0.06"),
    ("openai", "gpt-3.5-turbo"): ("0.0005", "0.0015"),
}


@pytest.mark.parametrize(("provider", "model"), list(SEED_TABLE))
def test_seed_models_have_the_seed_per_1k_prices(provider: str, model: str) -> None:
    price = get_price(provider, model)
    assert price is not None
    per_1k_in, per_1k_out = SEED_TABLE[(provider, model)]
    assert price.input_per_1k == Decimal(per_1k_in)
    assert price.output_per_1k == Decimal(per_1k_out)


@pytest.mark.parametrize(("provider", "model"), list(SEED_TABLE))
def test_seed_models_price_1000_in_500_out_exactly(provider: str, model: str) -> None:
    per_1k_in, per_1k_out = (Decimal(x) for x in SEED_TABLE[(provider, model)])
    usage = price_usage(provider, model, 1000, 500)
    expected_in, expected_out = per_1k_in, per_1k_out / 2
    assert usage.input_cost_usd == float(expected_in)
    assert usage.output_cost_usd == float(expected_out)
    assert usage.total_cost_usd == float(expected_in + expected_out)
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (1000, 500, 1500)
    cost = cost_nanos(provider, model, 1000, 500)
    assert nanos_to_decimal(cost.total_nanos) == expected_in + expected_out


def test_claude_3_sonnet_example_from_the_seed() -> None:
    usage = price_usage("anthropic", "claude-3-sonnet", 1000, 500)
    assert (usage.input_cost_usd, usage.output_cost_usd, usage.total_cost_usd) == (0.003, 0.0075, 0.0105)


@pytest.mark.parametrize(
    ("provider", "model", "catalog_model"),
    [
        ("anthropic", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("anthropic", "claude-3-sonnet-20240229", "claude-3-sonnet"),
        ("anthropic", "claude-3-haiku-20240307", "claude-3-haiku"),
        ("openai", "gpt-4-turbo-preview", "gpt-4-turbo"),
        ("openai", "gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("openai", "GPT-4o-mini", "gpt-4o-mini"),
    ],
)
def test_dated_and_aliased_model_ids_resolve(provider: str, model: str, catalog_model: str) -> None:
    price = get_price(provider, model)
    assert price is not None
    assert price.catalog_id == f"{provider}/{catalog_model}"
    assert price.source == "catalog"


def test_openai_compatible_provider_name_falls_back_to_model_lookup() -> None:
    assert get_price("vllm", "gpt-4o") == get_price("openai", "gpt-4o")
    assert get_price("my-gateway", "claude-3-haiku") is not None


def test_anthropic_cache_tokens_are_priced_at_their_own_rates() -> None:
    # The fixture's usage: 18 uncached + 412 cache writes + 2304 cache reads = 2734 prompt tokens.
    cost = cost_nanos("anthropic", "claude-3-5-sonnet-20241022", 2734, 100, 2304, 412)
    # $3 input, $0.30 read, $3.75 write, $15 output per MTok.
    assert cost.input_nanos == 18 * 3000 + 2304 * 300 + 412 * 3750
    assert cost.output_nanos == 100 * 15000
    usage = price_usage("anthropic", "claude-3-5-sonnet-20241022", 2734, 100, 2304, 412)
    assert usage.input_cost_usd == 0.0022902
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (2304, 412)


def test_one_hour_cache_writes_use_the_1h_rate() -> None:
    five_minute = cost_nanos("anthropic", "claude-3-5-sonnet", 1000, 0, 0, 1000)
    one_hour = cost_nanos("anthropic", "claude-3-5-sonnet", 1000, 0, 0, 1000, cache_write_1h_tokens=1000)
    assert five_minute.input_nanos == 1000 * 3750  # 1.25x input
    assert one_hour.input_nanos == 1000 * 6000  # 2x input


def test_openai_cached_tokens_are_a_cheaper_subset_of_prompt_tokens() -> None:
    # chat_response.json: prompt_tokens 2348 of which cached 2176 (gpt-4o-mini: $0.15 / $0.075).
    cost = cost_nanos("openai", "gpt-4o-mini", 2348, 0, cache_read_tokens=2176)
    assert cost.input_nanos == (2348 - 2176) * 150 + 2176 * 75


def test_missing_cache_rates_fall_back_to_the_input_rate() -> None:
    # gpt-4 has no cache prices in the catalog.
    assert cost_nanos("openai", "gpt-4", 100, 0, 40, 60) == cost_nanos("openai", "gpt-4", 100, 0)


def test_unknown_model_costs_zero_and_warns_exactly_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="greenlang_llm.pricing")
    for provider in ("openai", "anthropic", "somewhere"):
        for _ in range(3):
            usage = price_usage(provider, "no-such-model-7b", 1000, 500)
            assert (usage.input_cost_usd, usage.output_cost_usd, usage.total_cost_usd) == (0.0, 0.0, 0.0)
            assert usage.total_tokens == 1500
    assert estimate_cost_usd("openai", "no-such-model-7b", 10, 10) == 0.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "no-such-model-7b" in warnings[0].getMessage()
    assert get_price("openai", "no-such-model-7b") is None
    assert context_window("openai", "no-such-model-7b") is None


def test_each_unknown_model_gets_its_own_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="greenlang_llm.pricing")
    price_usage("openai", "mystery-a", 1, 1)
    price_usage("openai", "mystery-b", 1, 1)
    price_usage("openai", "mystery-a", 1, 1)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_override_beats_the_catalog_and_is_exact() -> None:
    set_price_override("gpt-4", input_per_mtok="1.1", output_per_mtok=2.2)
    usage = price_usage("openai", "gpt-4", 1_000_000, 1_000_000)
    assert (usage.input_cost_usd, usage.output_cost_usd) == (1.1, 2.2)
    assert usage.total_cost_usd == 3.3
    price = get_price("openai", "gpt-4")
    assert price is not None
    assert price.source == "override"


def test_override_can_price_an_unknown_self_hosted_model(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="greenlang_llm.pricing")
    set_price_override(
        "llama-local", input_per_mtok=0.2, output_per_mtok=0.4, cache_read_per_mtok=0.05, context_window=8192
    )
    cost = cost_nanos("openai", "llama-local", 1000, 1000, cache_read_tokens=1000)
    assert cost == Cost(50_000, 400_000, 450_000)
    assert context_window("openai", "llama-local") == 8192
    assert not caplog.records


def test_provider_specific_override_only_applies_to_that_provider() -> None:
    set_price_override("gpt-4o", provider="azure", input_per_mtok=1, output_per_mtok=1)
    azure, openai = get_price("azure", "gpt-4o"), get_price("openai", "gpt-4o")
    assert azure is not None
    assert openai is not None
    assert azure.source == "override"
    assert openai.source == "catalog"


def test_config_overrides_accept_per_mtok_and_per_1k() -> None:
    apply_price_overrides(
        {
            "house-model": {"input_per_1k": "0.003", "output_per_1k": 0.015},
            "Other-Model": {"input_per_mtok": 1, "output_per_mtok": 2, "cache_write_per_mtok": "1.25"},
        }
    )
    assert price_usage("custom", "house-model", 1000, 500).total_cost_usd == 0.0105
    assert cost_nanos("custom", "other-model", 10, 0, cache_write_tokens=10).input_nanos == 12_500


@pytest.mark.parametrize(
    "entry",
    [
        {"input_per_mtok": 1},
        {"input_per_mtok": 1, "output_per_mtok": 1, "bogus": 3},
        {"input_per_mtok": "abc", "output_per_mtok": 1},
        {"input_per_mtok": -1, "output_per_mtok": 1},
        {"input_per_mtok": float("nan"), "output_per_mtok": 1},
    ],
)
def test_bad_override_config_is_rejected_with_a_clear_error(entry: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        apply_price_overrides({"m": entry})


def test_costs_round_half_even_to_whole_nanos() -> None:
    # 0.0005 $/MTok = 0.5 nano per token: 1 token -> 0 (half to even), 3 -> 2 (1.5 -> 2), 5 -> 2 (2.5 -> 2).
    set_price_override("tiny", input_per_mtok="0.0005", output_per_mtok="0.0015")
    assert cost_nanos("x", "tiny", 1, 0).input_nanos == 0
    assert cost_nanos("x", "tiny", 3, 0).input_nanos == 2
    assert cost_nanos("x", "tiny", 5, 0).input_nanos == 2
    assert cost_nanos("x", "tiny", 7, 0).input_nanos == 4
    assert cost_nanos("x", "tiny", 0, 1).output_nanos == 2  # 1.5 -> 2


def test_long_prompts_switch_to_the_tier_price() -> None:
    price = get_price("anthropic", "claude-sonnet-4-5")
    assert price is not None
    assert price.tiers, "the catalog prices claude-sonnet-4-5 above 200K tokens differently"
    tier = price.tiers[0]
    short = cost_nanos("anthropic", "claude-sonnet-4-5", tier.above_input_tokens, 10)
    long = cost_nanos("anthropic", "claude-sonnet-4-5", tier.above_input_tokens + 1, 10)
    assert short.input_nanos == tier.above_input_tokens * int(price.input_per_mtok * 1000)
    assert long.input_nanos == (tier.above_input_tokens + 1) * int(tier.input_per_mtok * 1000)
    assert long.output_nanos == 10 * int(tier.output_per_mtok * 1000)


def test_estimate_is_prompt_plus_max_output_at_full_rates() -> None:
    assert estimate_cost_usd("anthropic", "claude-3-sonnet", 1000, 500) == 0.0105


def test_context_window_comes_from_the_catalog() -> None:
    assert context_window("openai", "gpt-4") == 8192
    assert context_window("anthropic", "claude-3-5-sonnet-20241022") == 200_000


@pytest.mark.parametrize(
    "args",
    [
        (-1, 0, 0, 0),
        (10, -1, 0, 0),
        (10, 0, 6, 5),  # cache tokens exceed the prompt
        (10.5, 0, 0, 0),
        (True, 0, 0, 0),
    ],
)
def test_impossible_token_counts_are_rejected(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(InvalidRequestError):
        cost_nanos("openai", "gpt-4", *args)


@pytest.mark.parametrize(
    ("amount", "nanos"),
    [(0.1, 100_000_000), ("0.0105", 10_500_000), (Decimal("1.0000000005"), 1_000_000_000),
     (Decimal("1.0000000015"), 1_000_000_002), (3, 3_000_000_000), (0.003, 3_000_000)],
)
def test_usd_to_nanos_is_exact_and_rounds_half_even(amount: float | str | Decimal, nanos: int) -> None:
    assert usd_to_nanos(amount) == nanos


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), "ten", None, True])
def test_usd_to_nanos_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(InvalidRequestError):
        usd_to_nanos(bad)  # type: ignore[arg-type]


def test_nanos_round_trip_to_the_nearest_float() -> None:
    assert nanos_to_usd(10_500_000) == 0.0105
    assert nanos_to_decimal(10_500_000) == Decimal("0.0105")


@given(
    st.integers(0, 10**7), st.integers(0, 10**6), st.integers(0, 10**7), st.integers(0, 10**7),
    st.decimals(min_value=0, max_value=100, places=4), st.decimals(min_value=0, max_value=100, places=4),
)
def test_costs_equal_the_decimal_computation_and_add_up(
    prompt: int, output: int, read: int, write: int, in_rate: Decimal, out_rate: Decimal
) -> None:
    read = min(read, prompt)
    write = min(write, prompt - read)
    set_price_override("prop", input_per_mtok=in_rate, output_per_mtok=out_rate, cache_read_per_mtok="0.0375")
    cost = cost_nanos("p", "prop", prompt, output, read, write)
    exact_in = ((prompt - read) * in_rate + read * Decimal("0.0375")) * 1000  # nanos
    exact_out = output * out_rate * 1000
    assert cost.input_nanos == int(exact_in.quantize(Decimal(1), rounding="ROUND_HALF_EVEN"))
    assert cost.output_nanos == int(exact_out.quantize(Decimal(1), rounding="ROUND_HALF_EVEN"))
    assert cost.total_nanos == cost.input_nanos + cost.output_nanos


def test_importing_pricing_does_not_load_the_catalog() -> None:
    code = "import sys, greenlang_llm.pricing; print('genai_prices' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
