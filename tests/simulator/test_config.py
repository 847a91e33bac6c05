"""Simulator config from TOML and dicts: defaults inherited per model, strict validation, hashed keys."""

from __future__ import annotations

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
