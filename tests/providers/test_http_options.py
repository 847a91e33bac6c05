"""HttpOptions: the keyword options every HTTP provider shares, with the seed's positional orders."""

from __future__ import annotations

import random
from typing import Any

import pytest

from greenlang_llm.providers import AnthropicProvider, OpenAIProvider
from greenlang_llm.providers.http_options import HttpOptions
from greenlang_llm.rate_limiter import RateLimiter


async def _no_sleep(_: float) -> None:
    return None


def _every_option() -> HttpOptions:
    return HttpOptions(
        session=None,
        rate_limiter=RateLimiter(requests_per_minute=60),
        sleep=_no_sleep,
        clock=lambda: 5.0,
        rng=random.Random(1),
        max_retry_after=7.0,
        first_token_timeout=3.0,
        idle_timeout=2.0,
        health_timeout=4.0,
        extra_headers={"x-team": "core"},
    )


@pytest.mark.parametrize("cls", [AnthropicProvider, OpenAIProvider])
def test_every_http_option_reaches_the_provider(cls: Any) -> None:
    options = _every_option()
    provider = cls("m", api_key="k", **options)
    assert (provider.first_token_timeout, provider.idle_timeout, provider.health_timeout) == (3.0, 2.0, 4.0)
    assert provider.retry_policy.max_retry_after == 7.0
    assert provider._rate_limiter is options["rate_limiter"]
    assert provider._clock() == 5.0
    assert provider._extra_headers == {"x-team": "core"}


def test_positional_orders_are_the_original_packages() -> None:
    claude = AnthropicProvider("c", "k", 1, 0.5, 2.0, 30.0, "http://127.0.0.1:1")
    assert (claude.max_retries, claude.base_delay, claude.max_delay, claude.timeout) == (1, 0.5, 2.0, 30.0)
    assert (claude.base_url, claude.max_connections) == ("http://127.0.0.1:1", 100)
    gpt = OpenAIProvider("g", "k", 1, 0.5, 2.0, 30.0, 7, "http://127.0.0.1:1/v1")
    assert (gpt.max_connections, gpt.base_url) == (7, "http://127.0.0.1:1/v1")


@pytest.mark.parametrize("cls", [AnthropicProvider, OpenAIProvider])
def test_an_unknown_keyword_is_a_type_error_not_ignored(cls: Any) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'idle_timout'"):
        cls("m", idle_timout=1.0)


def test_subclass_specific_keywords_stay_with_their_class() -> None:
    assert AnthropicProvider("c", api_version="2026-10-21", max_connections=3).api_version == "2026-10-21"
    gpt = OpenAIProvider("g", provider_name="vllm", require_done=False)
    assert (gpt.catalog_id, gpt.require_done) == ("vllm", False)
    with pytest.raises(TypeError):
        AnthropicProvider("c", provider_name="x")  # type: ignore[call-arg]
