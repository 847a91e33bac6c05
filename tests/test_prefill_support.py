"""prefill_support: the table of models known to accept or refuse an assistant prefill, and how a
provider's ``supports_prefill`` resolves (set > table > unknown), through a StreamGuard and the gateway."""

from __future__ import annotations

import pytest

from greenlang_llm.prefill_support import known_prefill_support
from greenlang_llm.providers import FakeProvider
from greenlang_llm.providers.anthropic_provider import AnthropicProvider
from greenlang_llm.providers.openai_provider import OpenAIProvider
from greenlang_llm.providers.stream_guard import StreamGuard


@pytest.mark.parametrize(("model", "known"), [
    ("claude-opus-4-6", False),
    ("claude-sonnet-4-6", False),
    ("us.anthropic.claude-opus-4-6-v1", False),  # Bedrock
    ("anthropic/claude-sonnet-4-6", False),  # an OpenAI-compatible proxy
    ("claude-opus-5", False),
    ("claude-sonnet-4-5-20250929", True),
    ("claude-haiku-4-5@20251001", True),  # Vertex
    ("claude-opus-4-5", True),
    ("claude-sonnet-4-20250514", True),
    ("claude-opus-4-1-20250805", True),
    ("claude-3-5-haiku-20241022", True),
    ("claude-opus-4-60", None),  # not a 4.6 model
    ("claude-opus-5-5", None),  # not known yet: try and learn
    ("gpt-4o-mini", None),
    ("sim-60", None),
])
def test_the_table_knows_which_models_refuse_a_prefill(model: str, known: bool | None) -> None:
    assert known_prefill_support(model) is known


def test_a_providers_own_setting_wins_over_the_table() -> None:
    assert AnthropicProvider("claude-sonnet-4-6", api_key="k").supports_prefill is False
    assert AnthropicProvider("claude-sonnet-4-6", api_key="k", supports_prefill=True).supports_prefill is True
    assert OpenAIProvider("gpt-4o-mini", api_key="k").supports_prefill is None
    assert OpenAIProvider("my-model", api_key="k", supports_prefill=False).supports_prefill is False
    fake = FakeProvider("claude-opus-4-6")
    assert fake.supports_prefill is False
    fake.supports_prefill = True
    assert fake.supports_prefill is True


def test_a_stream_guard_reports_the_wrapped_providers_setting() -> None:
    inner = OpenAIProvider("my-model", api_key="k", supports_prefill=False)
    assert StreamGuard(inner, idle_timeout=1.0).supports_prefill is False
    assert StreamGuard(FakeProvider("claude-opus-4-6"), idle_timeout=1.0).supports_prefill is False
    assert StreamGuard(FakeProvider("m"), idle_timeout=1.0).supports_prefill is None


@pytest.mark.parametrize(("written", "expected"), [({}, False), ({"supports_prefill": True}, True)])
def test_the_gateways_supports_prefill_reaches_the_provider(written: dict[str, bool], expected: bool) -> None:
    from greenlang_llm.gateway.config import parse_config
    from greenlang_llm.gateway.targets import build_provider

    config = parse_config({
        "providers": [{"name": "c", "type": "anthropic", "model_id": "claude-opus-4-6", "api_key_env": "K",
                       **written}],
        "routes": [{"name": "r", "providers": ["c"]}],
        "keys": [{"key_env": "ACME", "tenant": "acme"}],
    }, env={"K": "sk-x", "ACME": "sk-gl-acme-0123456789"})
    assert build_provider(config.providers[0]).supports_prefill is expected


def test_the_gateway_refuses_a_supports_prefill_that_is_not_a_boolean() -> None:
    from greenlang_llm.gateway.config import parse_config

    with pytest.raises(Exception, match="supports_prefill"):
        parse_config({
            "providers": [{"name": "c", "type": "openai", "model_id": "m", "api_key_env": "K",
                           "supports_prefill": "yes"}],
            "routes": [{"name": "r", "providers": ["c"]}],
            "keys": [{"key_env": "ACME", "tenant": "acme"}],
        }, env={"K": "sk-x", "ACME": "sk-gl-acme-0123456789"})
