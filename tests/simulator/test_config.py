"""Simulator config from TOML and dicts: defaults inherited per model, strict validation, hashed keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from greenlang_llm.simulator.config import ModelBehaviour, SimulatorConfig, hash_key

TOML = """
seed = 7
valid_keys_sha256 = ["{digest}"]

[defaults]
reply_tokens = 8
token_ms = 5

[models."claude-sonnet-4-6"]
cache_read_tokens = 2048

[[faults]]
kind = "429"
rate = 0.25
model = "gpt-4o-mini"
retry_after = 2
"""


def test_toml_config_loads_models_faults_and_key_hashes(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(TOML.replace("{digest}", hash_key("sk-test-canary")))
    config = SimulatorConfig.from_toml(path)
    assert config.seed == 7
    assert config.behaviour("claude-sonnet-4-6") == ModelBehaviour(
        reply_tokens=8, token_ms=5, cache_read_tokens=2048
    )
    assert config.behaviour("unknown") == ModelBehaviour(reply_tokens=8, token_ms=5)
    (rule,) = config.faults
    assert (rule.kind, rule.rate, rule.model, rule.retry_after) == ("rate_limit", 0.25, "gpt-4o-mini", 2.0)
    assert config.valid_keys_sha256 == SimulatorConfig.hash_keys(["sk-test-canary"])


@pytest.mark.parametrize(
    "data",
    [
        {"sed": 1},
        {"defaults": {"reply_token": 3}},
        {"models": {"m": {"latency_ms": -1}}},
        {"defaults": {"reply_tokens": 0}},
        {"faults": [{"kind": "nope"}]},
    ],
)
def test_config_mistakes_are_rejected_with_the_name(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        SimulatorConfig.from_dict(data)


def test_hash_key_is_sha256_hex() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_glob_model_keys_match_unlisted_models_and_are_not_listed() -> None:
    config = SimulatorConfig.from_dict(
        {"models": {"gpt-4o": {"reply_tokens": 2}, "gpt-*": {"reply_tokens": 3}, "claude-?-x": {}}}
    )
    assert config.behaviour("gpt-4o").reply_tokens == 2
    assert config.behaviour("gpt-5").reply_tokens == 3
    assert config.behaviour("claude-sonnet").reply_tokens == 16
    assert config.knows("gpt-5")
    assert not config.knows("o3")
    assert config.model_ids() == ["gpt-4o"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"sed": 1}, "sed: unknown key"),
        ({"defaults": {"reply_token": 3}}, "defaults.reply_token: unknown key"),
        ({"models": {"m": {"latency_ms": -1}}}, "models.m.latency_ms: must be a number >= 0, got -1"),
        ({"models": {"ok": {}, "gpt-4o.mini": {"token_ms": "5"}}}, 'models."gpt-4o.mini".token_ms: must'),
        ({"defaults": {"reply_tokens": 0}}, "defaults.reply_tokens: must be at least 1, got 0"),
        ({"faults": [{"kind": "nope"}]}, "faults[0]: unknown fault kind 'nope'"),
        ({"faults": [{"kind": "429", "rat": 0.5}]}, "faults[0].rat: unknown key"),
        ({"seed": "7"}, "seed: must be an integer"),
    ],
)
def test_config_mistakes_are_one_line_naming_the_key(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(expected)) as info:
        SimulatorConfig.from_dict(data)
    assert "\n" not in str(info.value)


def test_a_model_table_changes_only_what_it_names() -> None:
    config = SimulatorConfig.from_dict({"defaults": {"token_ms": 5}, "models": {"m": {"reply_tokens": 3}}})
    assert config.behaviour("m") == ModelBehaviour(reply_tokens=3, token_ms=5.0)
    base = ModelBehaviour(latency_ms=7)
    assert ModelBehaviour.from_dict({"echo_words": 2}, base) == ModelBehaviour(latency_ms=7, echo_words=2)
    assert ModelBehaviour.from_dict({"echo_words": 2}).to_dict()["echo_words"] == 2
