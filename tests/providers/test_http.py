"""The machinery both HTTP providers share (``providers/_http.py``), tested through both.

Every test runs once per API against the scripted loopback upstream, so the
request count is exact and no real time passes (sleep is injected); only the
timeout tests wait, for 0.1 s.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import pickle
import random
import socket
from typing import Any

import pytest

from greenlang_llm.providers import AnthropicProvider, OpenAIProvider
from greenlang_llm.providers._http import HttpProvider, Secret, check_base_url, is_loopback_host
from greenlang_llm.providers.base_provider import (
    AuthenticationError,
    GenerationRequest,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServiceUnavailableError,
    StreamInterruptedError,
)

SPECS: dict[str, dict[str, Any]] = {
    "anthropic": {
        "cls": AnthropicProvider,
        "model": "claude-sonnet-4-6",
        "suffix": "",
        "ok": "anthropic/messages_response.json",
        "stream": "anthropic/messages_stream.sse",
        "overloaded": ("anthropic/error_529_overloaded.json", 529),
        "bad_request": "anthropic/error_400.json",
        "unauthorized": "anthropic/error_401.json",
        "rate_limited": "anthropic/error_429.http",
        "key_env": "ANTHROPIC_API_KEY",
        "url_env": "ANTHROPIC_BASE_URL",
        "path": "/v1/messages",
        "models": "/v1/models",
    },
    "openai": {
        "cls": OpenAIProvider,
        "model": "gpt-4.1-mini",
        "suffix": "/v1",
        "ok": "openai/chat_response.json",
        "stream": "openai/chat_stream_include_usage.sse",
        "overloaded": ("openai/error_500.json", 500),
        "bad_request": "openai/error_400.json",
        "unauthorized": "openai/error_401.json",
        "rate_limited": "openai/error_429.http",
        "key_env": "OPENAI_API_KEY",
        "url_env": "OPENAI_BASE_URL",
        "path": "/v1/chat/completions",
        "models": "/v1/models",
    },
}


async def collect(stream: Any, into: list[str]) -> None:
    async for chunk in stream:
        into.append(chunk.text)


REQUEST = GenerationRequest(prompt="Explain circuit breakers.", max_tokens=100)


@pytest.fixture(params=sorted(SPECS))
def spec(request: pytest.FixtureRequest) -> dict[str, Any]:
    return SPECS[request.param]


def make(spec: dict[str, Any], upstream: Any, key: str, sleep: Any = None, **kw: Any) -> HttpProvider:
    kw.setdefault("base_url", upstream.base_url + spec["suffix"])
    provider: HttpProvider = spec["cls"](spec["model"], api_key=key, sleep=sleep, rng=random.Random(7), **kw)
    return provider


# -- configuration ---------------------------------------------------------------------------


def test_secret_hides_its_value_in_repr_str_and_pickle() -> None:
    secret = Secret("sk-test-canary")
    assert "canary" not in repr(secret)
    assert "canary" not in str(secret)
    assert "canary" not in f"{secret}"
    assert secret.reveal() == "sk-test-canary"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("api.anthropic.com", False),
        ("10.0.0.1", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_hosts_are_recognised(host: str | None, expected: bool) -> None:
    assert is_loopback_host(host) is expected


def test_loopback_guard_refuses_public_hosts_only_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidRequestError, match="not loopback"):
        check_base_url("https://api.openai.com/v1", "openai")
    check_base_url("http://127.0.0.1:8001", "openai")
    monkeypatch.setenv("GREENLANG_LLM_LOOPBACK_ONLY", "0")
    check_base_url("https://api.openai.com/v1", "openai")
    with pytest.raises(InvalidRequestError, match="base URL"):
        check_base_url("ftp://example.com", "openai")


async def test_default_public_endpoint_is_refused_under_the_guard_before_any_io(
    spec: dict[str, Any], canary_key: str
) -> None:
    provider = spec["cls"](spec["model"], api_key=canary_key)
    assert provider.base_url in ("https://api.anthropic.com", "https://api.openai.com/v1")
    with pytest.raises(InvalidRequestError, match="not loopback"):
        await provider.generate(REQUEST)
    with pytest.raises(InvalidRequestError, match="not loopback"):
        async for _ in provider.stream(REQUEST):
            pass
    assert provider._session is None  # no pool was even created
    await provider.close()


async def test_missing_key_is_authentication_error_naming_the_variable_before_any_request(
    spec: dict[str, Any], upstream: Any
) -> None:
    provider = spec["cls"](spec["model"], base_url=upstream.base_url + spec["suffix"])  # built without a key
    with pytest.raises(AuthenticationError, match=spec["key_env"]) as info:
        await provider.generate(REQUEST)
    assert info.value.retryable is False
    assert info.value.provider == spec["cls"].name
    health = await provider.health_check()
    assert not health.is_healthy
    assert spec["key_env"] in (health.last_error or "")
    assert upstream.requests == []
    await provider.close()


async def test_key_and_base_url_default_to_the_environment(
    spec: dict[str, Any], upstream: Any, canary_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(spec["key_env"], canary_key)
    monkeypatch.setenv(spec["url_env"], upstream.base_url + spec["suffix"] + "/")
    provider = spec["cls"](spec["model"])
    assert provider.base_url == upstream.base_url + spec["suffix"]
    upstream.json_fixture(spec["ok"])
    response = await provider.generate(REQUEST)
    assert response.text
    assert upstream.posts[0].path == spec["path"]
    sent = {k.lower(): v for k, v in upstream.posts[0].headers.items()}
    assert canary_key in (sent.get("x-api-key", "") + sent.get("authorization", ""))
    await provider.close()


def test_constructor_validates_and_keeps_seed_defaults(spec: dict[str, Any]) -> None:
    provider = spec["cls"](spec["model"])
    assert (provider.max_retries, provider.base_delay, provider.max_delay, provider.timeout) == (
        4,
        1.0,
        8.0,
        60.0,
    )
    assert provider.max_connections == 100
    with pytest.raises(InvalidRequestError):
        spec["cls"]("")
    with pytest.raises(InvalidRequestError):
        spec["cls"](spec["model"], timeout=0)


# -- key redaction ---------------------------------------------------------------------------


async def test_key_never_appears_in_logs_reprs_or_error_text(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = make(spec, upstream, canary_key, fake_sleep, max_retries=1)
    # An upstream that echoes the key in its error message must not leak it either.
    echo = {
        "type": "error",
        "error": {"type": "authentication_error", "message": f"invalid key {canary_key}"},
    }
    upstream.reply(status=401, body=echo)
    upstream.reply(status=503, body={"error": {"message": f"down for {canary_key}"}})
    upstream.reply(status=503, body={"error": {"message": f"down for {canary_key}"}})
    errors: list[BaseException] = []
    for _ in range(2):
        try:
            await provider.generate(REQUEST)
        except ProviderError as exc:
            errors.append(exc)
    upstream.reply(reset=True)
    upstream.reply(reset=True)
    try:
        async for _ in provider.stream(REQUEST):
            pass
    except ProviderError as exc:
        errors.append(exc)
    health = await provider.health_check()
    texts = [repr(provider), str(provider), repr(health), *(f"{e!s} {e!r} {e.args}" for e in errors)]
    texts += [r.getMessage() + repr(r.args) for r in caplog.records]
    assert len(errors) == 3
    assert any("[redacted]" in str(e) for e in errors)
    assert all(canary_key not in text for text in texts)
    assert any("retry" in r.getMessage() for r in caplog.records)  # the retry was logged, key-free
    await provider.close()


# -- retries ---------------------------------------------------------------------------------


async def test_overloaded_is_retried_with_backoff_until_success(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    name, status = spec["overloaded"]
    upstream.json_fixture(name, status=status).json_fixture(name, status=status).json_fixture(spec["ok"])
    provider = make(spec, upstream, canary_key, fake_sleep)
    response = await provider.generate(REQUEST)
    assert response.text
    assert len(upstream.posts) == 3
    assert len(fake_sleep.waits) == 2
    assert 0.5 <= fake_sleep.waits[0] <= 1.0
    assert 1.0 <= fake_sleep.waits[1] <= 2.0
    await provider.close()


async def test_retries_stop_after_max_retries_plus_one_attempts(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    name, status = spec["overloaded"]
    for _ in range(5):
        upstream.json_fixture(name, status=status)
    provider = make(spec, upstream, canary_key, fake_sleep)  # default max_retries=4
    with pytest.raises(ServiceUnavailableError) as info:
        await provider.generate(REQUEST)
    assert info.value.status_code == status
    assert info.value.retryable
    assert len(upstream.posts) == 5
    ceilings = [1.0, 2.0, 4.0, 8.0]
    assert [c / 2 <= w <= c for w, c in zip(fake_sleep.waits, ceilings, strict=True)] == [True] * 4
    await provider.close()


@pytest.mark.parametrize(
    ("which", "error"), [("bad_request", InvalidRequestError), ("unauthorized", AuthenticationError)]
)
async def test_client_errors_are_not_retried(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any, which: str, error: type
) -> None:
    status = 400 if which == "bad_request" else 401
    upstream.json_fixture(spec[which], status=status).json_fixture(spec["ok"])
    provider = make(spec, upstream, canary_key, fake_sleep)
    with pytest.raises(error) as info:
        await provider.generate(REQUEST)
    assert info.value.status_code == status
    assert not info.value.retryable
    assert len(upstream.posts) == 1
    assert fake_sleep.waits == []
    await provider.close()


async def test_retry_after_is_honored_when_longer_than_backoff(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.http_fixture(spec["rate_limited"], headers={"retry-after": "11", "retry-after-ms": "11000"})
    upstream.json_fixture(spec["ok"])
    provider = make(spec, upstream, canary_key, fake_sleep)
    await provider.generate(REQUEST)
    assert fake_sleep.waits == [11.0]
    assert len(upstream.posts) == 2
    await provider.close()


async def test_retry_after_ms_is_read_and_backoff_wins_when_longer(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.http_fixture(spec["rate_limited"], headers={"retry-after": "1", "retry-after-ms": "372"})
    upstream.json_fixture(spec["ok"])
    provider = make(spec, upstream, canary_key, fake_sleep, base_delay=2.0)
    await provider.generate(REQUEST)
    assert len(fake_sleep.waits) == 1
    assert 1.0 <= fake_sleep.waits[0] <= 2.0
    await provider.close()


async def test_retry_after_beyond_the_cap_is_raised_at_once_for_failover(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.http_fixture(spec["rate_limited"], headers={"retry-after": "300", "retry-after-ms": "300000"})
    provider = make(spec, upstream, canary_key, fake_sleep)
    with pytest.raises(RateLimitError) as info:
        await provider.generate(REQUEST)
    assert info.value.retry_after == 300.0
    assert len(upstream.posts) == 1
    assert fake_sleep.waits == []
    await provider.close()


class RecordingLimiter:
    """Duck-typed rate limiter: counts acquisitions, records cool-downs."""

    tokens_per_minute = None

    def __init__(self) -> None:
        self.acquired = 0
        self.cool_downs: list[float] = []

    async def acquire(self, tokens: int = 1, wait: bool = True) -> None:
        self.acquired += 1

    def cool_down(self, seconds: float) -> None:
        self.cool_downs.append(seconds)


async def test_rate_limiter_is_acquired_per_attempt_and_cooled_down_by_a_429(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    limiter = RecordingLimiter()
    upstream.http_fixture(spec["rate_limited"], headers={"retry-after": "3", "retry-after-ms": "3000"})
    upstream.json_fixture(spec["ok"]).sse_fixture(spec["stream"])
    provider = make(spec, upstream, canary_key, fake_sleep, rate_limiter=limiter)
    await provider.generate(REQUEST)
    assert limiter.acquired == 2
    assert limiter.cool_downs == [3.0]
    async for _ in provider.stream(REQUEST):
        pass
    assert limiter.acquired == 3
    await provider.close()


async def test_a_real_rate_limiter_takes_worst_case_tokens_and_settles_to_the_real_usage(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    from greenlang_llm.rate_limiter import RateLimiter

    limiter = RateLimiter(requests_per_minute=60, tokens_per_minute=1_000_000, clock=lambda: 0.0)
    provider = make(spec, upstream, canary_key, fake_sleep, rate_limiter=limiter)
    upstream.json_fixture(spec["ok"])
    response = await provider.generate(REQUEST)
    requests_left, tokens_left = limiter.available()
    assert requests_left == 59
    assert tokens_left == pytest.approx(1_000_000 - response.usage.total_tokens)
    await provider.close()


# -- transport failures ----------------------------------------------------------------------


async def test_timeout_is_provider_timeout_error_and_retried(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.reply(hang=True).reply(hang=True)
    provider = make(spec, upstream, canary_key, fake_sleep, timeout=0.1, max_retries=1)
    with pytest.raises(ProviderTimeoutError) as info:
        await provider.generate(REQUEST)
    assert info.value.retryable
    assert len(upstream.posts) == 2
    await provider.close()


async def test_connection_reset_is_retried_then_succeeds(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.reply(reset=True).json_fixture(spec["ok"])
    provider = make(spec, upstream, canary_key, fake_sleep)
    response = await provider.generate(REQUEST)
    assert response.text
    assert len(upstream.posts) == 2
    assert len(fake_sleep.waits) == 1
    await provider.close()


async def test_connection_refused_is_provider_connection_error(
    spec: dict[str, Any], canary_key: str, fake_sleep: Any
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again at once: nothing listens there
    provider = spec["cls"](
        spec["model"],
        api_key=canary_key,
        base_url=f"http://127.0.0.1:{port}{spec['suffix']}",
        sleep=fake_sleep,
        max_retries=2,
    )
    with pytest.raises(ProviderConnectionError) as info:
        await provider.generate(REQUEST)
    assert info.value.retryable
    assert len(fake_sleep.waits) == 2
    health = await provider.health_check()
    assert not health.is_healthy
    assert "Connect" in (health.last_error or "")
    await provider.close()


async def test_invalid_json_body_with_200_is_a_retryable_failure(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.reply(status=200, body=b"<html>proxy error</html>").json_fixture(spec["ok"])
    provider = make(spec, upstream, canary_key, fake_sleep)
    assert (await provider.generate(REQUEST)).text
    assert len(upstream.posts) == 2
    await provider.close()


async def test_call_deadline_limits_retries(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    name, status = spec["overloaded"]
    for _ in range(5):
        upstream.json_fixture(name, status=status)
    provider = make(spec, upstream, canary_key, sleep, clock=lambda: now[0], base_delay=1.0)
    with pytest.raises(ServiceUnavailableError):
        await provider.generate(GenerationRequest(prompt="hi", timeout=1.2))
    assert len(upstream.posts) == 2  # waited <= 1 s once; the next >= 1 s wait would pass the deadline
    await provider.close()


# -- streams ---------------------------------------------------------------------------------


async def test_stream_failure_before_the_first_delta_is_retried(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.reply(reset=True)
    upstream.sse_fixture(spec["stream"], cut_after=1)  # cut before any text
    upstream.sse_fixture(spec["stream"])
    provider = make(spec, upstream, canary_key, fake_sleep)
    chunks = [c async for c in provider.stream(REQUEST)]
    assert chunks[-1].usage is not None
    assert len(upstream.posts) == 3
    await provider.close()


async def test_stream_cut_after_text_raises_stream_interrupted_and_is_not_retried(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.sse_fixture(spec["stream"], cut_after=4).sse_fixture(spec["stream"])
    provider = make(spec, upstream, canary_key, fake_sleep)
    received: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        await collect(provider.stream(REQUEST), received)
    assert received
    assert info.value.partial_text == "".join(received)
    assert len(upstream.posts) == 1
    await provider.close()


async def test_stream_idle_timeout_mid_stream_is_stream_interrupted(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.sse_fixture(spec["stream"], hang_after=4)
    provider = make(spec, upstream, canary_key, fake_sleep, idle_timeout=0.1)
    with pytest.raises(StreamInterruptedError, match="idle timeout"):
        async for _ in provider.stream(REQUEST):
            pass
    await provider.close()


async def test_stream_first_token_timeout_is_provider_timeout_and_retried(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.reply(hang=True).sse_fixture(spec["stream"])
    provider = make(spec, upstream, canary_key, fake_sleep, first_token_timeout=0.1)
    chunks = [c async for c in provider.stream(REQUEST)]
    assert chunks[-1].finish_reason == "stop"
    assert len(upstream.posts) == 2
    await provider.close()


async def test_closing_a_stream_early_releases_its_connection(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.sse_fixture(spec["stream"], hang_after=5).json_fixture(spec["ok"])
    provider = make(spec, upstream, canary_key, fake_sleep, max_connections=1, timeout=2.0)
    stream = provider.stream(REQUEST)
    first = await anext(stream)  # type: ignore[call-overload]
    assert first.text
    await stream.aclose()  # type: ignore[attr-defined]
    # With a pool of one, a leaked connection would block this call until its timeout.
    response = await asyncio.wait_for(provider.generate(REQUEST), 1.0)
    assert response.text
    await provider.close()


async def test_abandoning_a_stream_releases_its_connection_when_collected(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.sse_fixture(spec["stream"], hang_after=5).json_fixture(spec["ok"])
    provider = make(spec, upstream, canary_key, fake_sleep, max_connections=1, timeout=2.0)
    async for _ in provider.stream(REQUEST):
        break  # the consumer walks away without aclose()
    gc.collect()
    for _ in range(5):
        await asyncio.sleep(0)
    assert (await asyncio.wait_for(provider.generate(REQUEST), 1.0)).text
    await provider.close()


async def test_a_completed_stream_returns_its_connection_to_the_pool(
    spec: dict[str, Any], upstream: Any, canary_key: str, fake_sleep: Any
) -> None:
    upstream.sse_fixture(spec["stream"]).sse_fixture(spec["stream"])
    provider = make(spec, upstream, canary_key, fake_sleep, max_connections=1)
    for _ in range(2):
        assert [c async for c in provider.stream(REQUEST)][-1].usage is not None
    assert upstream.posts[0].headers.get("Host") == upstream.posts[1].headers.get("Host")
    await provider.close()


# -- session, health -------------------------------------------------------------------------


async def test_session_is_created_lazily_and_closed(
    spec: dict[str, Any], upstream: Any, canary_key: str
) -> None:
    provider = make(spec, upstream, canary_key)
    assert provider._session is None
    upstream.json_fixture(spec["ok"])
    await provider.generate(REQUEST)
    session = provider._session
    assert session is not None
    assert not session.closed
    await provider.close()
    assert session.closed
    assert provider._session is None


def test_a_provider_survives_being_used_from_two_event_loops(spec: dict[str, Any], upstream: Any) -> None:
    # asyncio.run twice (as scripts do): the second loop gets its own pool.
    provider = spec["cls"](spec["model"], api_key="sk-test", base_url="http://127.0.0.1:9")

    async def probe() -> bool:
        healthy = (await provider.health_check()).is_healthy
        await provider.close()
        return healthy

    assert asyncio.run(probe()) is False
    assert asyncio.run(probe()) is False


async def test_injected_session_is_used_and_left_open(
    spec: dict[str, Any], upstream: Any, canary_key: str
) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        provider = make(spec, upstream, canary_key, session=session)
        upstream.json_fixture(spec["ok"])
        await provider.generate(REQUEST)
        await provider.close()
        assert not session.closed


async def test_health_check_probes_the_models_list(
    spec: dict[str, Any], upstream: Any, canary_key: str
) -> None:
    provider = make(spec, upstream, canary_key)
    upstream.reply(body={"data": [{"id": spec["model"]}], "object": "list"})
    health = await provider.health_check()
    assert health.is_healthy
    assert health.latency_ms is not None
    assert health.latency_ms >= 0
    assert upstream.requests[-1].method == "GET"
    assert upstream.requests[-1].path == spec["models"]
    upstream.json_fixture(spec["unauthorized"], status=401)
    health = await provider.health_check()
    assert not health.is_healthy
    assert "401" in (health.last_error or "")
    assert provider.last_error == health.last_error
    await provider.close()


# -- end to end against the simulator --------------------------------------------------------
#
# The simulator's replies and usage are a documented pure function of the request
# (simulator/replies.py), so texts, token counts and costs are asserted exactly, and
# its stats count every attempt that reached it.

SIM_MODELS = {
    # model, $/MTok: input, output, cache read, cache write (5 min)
    "anthropic": ("claude-3-sonnet-20240229", "3", "15", "0.3", "3.75"),
    "openai": ("gpt-4o-mini", "0.15", "0.6", "0.075", "0"),
}


def sim_provider(spec: dict[str, Any], sim: Any, key: str, sleep: Any = None, **kw: Any) -> HttpProvider:
    kind = "anthropic" if spec["cls"] is AnthropicProvider else "openai"
    base = sim.base_url + spec["suffix"]
    provider: HttpProvider = spec["cls"](
        SIM_MODELS[kind][0], api_key=key, base_url=base, sleep=sleep, rng=random.Random(1), **kw
    )
    return provider


def expected_usage(spec: dict[str, Any], sim: Any, request: GenerationRequest) -> tuple[str, Any]:
    from greenlang_llm.simulator.replies import make_reply

    kind = "anthropic" if spec["cls"] is AnthropicProvider else "openai"
    model = SIM_MODELS[kind][0]
    reply = make_reply(request, model, sim.config.behaviour(model))
    return reply.text, reply.usage


def nanos(tokens: int, rate: str) -> int:
    from decimal import Decimal

    value = Decimal(tokens) * Decimal(rate) * 1000
    assert value == value.to_integral_value()
    return int(value)


def assert_priced(spec: dict[str, Any], usage: Any, reported: Any) -> None:
    kind = "anthropic" if spec["cls"] is AnthropicProvider else "openai"
    _, in_rate, out_rate, read_rate, write_rate = SIM_MODELS[kind]
    assert (usage.input_tokens, usage.output_tokens) == (reported.input_tokens, reported.output_tokens)
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (
        reported.cache_read_tokens,
        reported.cache_write_tokens,
    )
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    input_nanos = (
        nanos(uncached, in_rate)
        + nanos(usage.cache_read_tokens, read_rate)
        + nanos(usage.cache_write_tokens, write_rate)
    )
    output_nanos = nanos(usage.output_tokens, out_rate)
    assert usage.input_cost_usd == input_nanos / 1e9
    assert usage.output_cost_usd == output_nanos / 1e9
    assert usage.total_cost_usd == (input_nanos + output_nanos) / 1e9
    assert usage.estimated is False


@pytest.fixture
def cached_sim(simulator: Any) -> Any:
    """The simulator with a cached prompt prefix on both models, so cache pricing is exercised."""
    from greenlang_llm.simulator import ModelBehaviour

    simulator.config.models["claude-3-sonnet-20240229"] = ModelBehaviour(
        reply_tokens=12, cache_read_tokens=2048, cache_write_tokens=512
    )
    simulator.config.models["gpt-4o-mini"] = ModelBehaviour(reply_tokens=12, cache_read_tokens=1024)
    return simulator


def add_fault(sim: Any, kind: str, **kw: Any) -> None:
    from greenlang_llm.simulator import FaultRule

    sim.faults.add(FaultRule(kind=kind, **kw))


SIM_REQUEST = GenerationRequest(
    prompt="Explain carbon accounting in 2 sentences.", system="Be brief.", temperature=0.7, max_tokens=100
)


async def test_sim_generate_text_usage_and_costs_are_exact(
    spec: dict[str, Any], cached_sim: Any, canary_key: str
) -> None:
    provider = sim_provider(spec, cached_sim, canary_key)
    response = await provider.generate(SIM_REQUEST)
    text, reported = expected_usage(spec, cached_sim, SIM_REQUEST)
    assert response.text == text
    assert response.finish_reason == "stop"
    assert response.model_id == provider.model_id
    assert_priced(spec, response.usage, reported)
    assert cached_sim.stats.requests == 1
    await provider.close()


async def test_sim_stream_matches_generate_and_ends_with_priced_usage(
    spec: dict[str, Any], cached_sim: Any, canary_key: str
) -> None:
    provider = sim_provider(spec, cached_sim, canary_key)
    chunks = [c async for c in provider.stream(SIM_REQUEST)]
    text, reported = expected_usage(spec, cached_sim, SIM_REQUEST)
    # the text (however many reads it came in), then one final chunk that alone has usage
    assert "".join(c.text for c in chunks) == text
    assert len(text.split()) == 12
    assert all(c.text and c.usage is None and c.finish_reason is None for c in chunks[:-1])
    assert chunks[-1].text == ""
    assert chunks[-1].finish_reason == "stop"
    assert_priced(spec, chunks[-1].usage, reported)
    assert cached_sim.stats.streams["completed"] == 1
    await provider.close()


async def test_sim_max_tokens_cut_reports_length(
    spec: dict[str, Any], simulator: Any, canary_key: str
) -> None:
    provider = sim_provider(spec, simulator, canary_key)
    response = await provider.generate(GenerationRequest(prompt="hi", max_tokens=3))
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 3
    await provider.close()


@pytest.mark.parametrize("kind", ["http_500", "http_503", "overloaded", "rate_limit", "reset"])
async def test_sim_retryable_faults_are_retried_with_the_exact_number_of_attempts(
    spec: dict[str, Any], simulator: Any, canary_key: str, fake_sleep: Any, kind: str
) -> None:
    add_fault(simulator, kind, times=3)
    provider = sim_provider(spec, simulator, canary_key, fake_sleep)
    response = await provider.generate(SIM_REQUEST)
    assert response.text
    assert simulator.stats.requests == 4  # three faults, then the answer
    assert len(fake_sleep.waits) == 3
    await provider.close()


@pytest.mark.parametrize("kind", ["http_500", "overloaded", "rate_limit", "reset"])
async def test_sim_persistent_faults_exhaust_max_retries(
    spec: dict[str, Any], simulator: Any, canary_key: str, fake_sleep: Any, kind: str
) -> None:
    add_fault(simulator, kind)
    provider = sim_provider(spec, simulator, canary_key, fake_sleep, max_retries=2)
    with pytest.raises(ServiceUnavailableError if kind != "rate_limit" else RateLimitError) as info:
        await provider.generate(SIM_REQUEST)
    assert info.value.retryable
    assert simulator.stats.requests == 3
    await provider.close()


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("auth", AuthenticationError),
        ("bad_request", InvalidRequestError),
        ("not_found", InvalidRequestError),
        ("context_length", InvalidRequestError),
        ("content_policy", InvalidRequestError),
    ],
)
async def test_sim_client_errors_are_not_retried(
    spec: dict[str, Any], simulator: Any, canary_key: str, fake_sleep: Any, kind: str, error: type
) -> None:
    add_fault(simulator, kind)
    provider = sim_provider(spec, simulator, canary_key, fake_sleep)
    with pytest.raises(error) as info:
        await provider.generate(SIM_REQUEST)
    assert not info.value.retryable
    assert simulator.stats.requests == 1
    assert fake_sleep.waits == []
    await provider.close()


async def test_sim_retry_after_is_honored(
    spec: dict[str, Any], simulator: Any, canary_key: str, fake_sleep: Any
) -> None:
    add_fault(simulator, "rate_limit", retry_after=7, times=2)
    provider = sim_provider(spec, simulator, canary_key, fake_sleep)
    await provider.generate(SIM_REQUEST)
    assert fake_sleep.waits == [7.0, 7.0]
    assert simulator.stats.requests == 3
    await provider.close()


async def test_sim_slow_answer_times_out_and_is_retried(
    spec: dict[str, Any], simulator: Any, canary_key: str, fake_sleep: Any
) -> None:
    add_fault(simulator, "slow", delay=0.5, times=1)
    provider = sim_provider(spec, simulator, canary_key, fake_sleep, timeout=0.1)
    response = await provider.generate(SIM_REQUEST)
    assert response.text
    assert simulator.stats.requests == 2
    await provider.close()


@pytest.mark.parametrize("kind", ["stream_cut", "stream_error", "invalid_json", "no_terminal", "stall"])
async def test_sim_stream_faults_after_text_raise_stream_interrupted_with_the_partial_text(
    spec: dict[str, Any], simulator: Any, canary_key: str, fake_sleep: Any, kind: str
) -> None:
    add_fault(simulator, kind, after=3, delay=0.5)
    provider = sim_provider(spec, simulator, canary_key, fake_sleep, idle_timeout=0.1)
    received: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        await collect(provider.stream(SIM_REQUEST), received)
    expected_text, _ = expected_usage(spec, simulator, SIM_REQUEST)
    assert "".join(received) == info.value.partial_text
    words = 16 if kind == "no_terminal" else 3  # default reply: 16 tokens
    assert info.value.partial_text == " ".join(expected_text.split()[:words])
    assert simulator.stats.requests == 1  # never retried once text was delivered
    await provider.close()


@pytest.mark.parametrize("kind", ["stream_cut", "stream_error", "invalid_json"])
async def test_sim_stream_faults_before_any_text_are_retried(
    spec: dict[str, Any], simulator: Any, canary_key: str, fake_sleep: Any, kind: str
) -> None:
    add_fault(simulator, kind, after=0, times=1)
    provider = sim_provider(spec, simulator, canary_key, fake_sleep)
    chunks = [c async for c in provider.stream(SIM_REQUEST)]
    assert chunks[-1].usage is not None
    assert simulator.stats.requests == 2
    await provider.close()


async def test_sim_closing_a_stream_early_ends_it_upstream(
    spec: dict[str, Any], simulator: Any, canary_key: str
) -> None:
    from greenlang_llm.simulator import ModelBehaviour

    model = SIM_MODELS["anthropic" if spec["cls"] is AnthropicProvider else "openai"][0]
    simulator.config.models[model] = ModelBehaviour(reply_tokens=500, token_ms=5)
    provider = sim_provider(spec, simulator, canary_key)
    stream = provider.stream(GenerationRequest(prompt="hi", max_tokens=500))
    assert (await anext(stream)).text  # type: ignore[call-overload]
    await stream.aclose()  # type: ignore[attr-defined]
    for _ in range(200):
        if simulator.stats.open_streams == 0:
            break
        await asyncio.sleep(0.005)
    assert simulator.stats.open_streams == 0
    assert simulator.stats.streams["client_closed"] == 1
    await provider.close()


async def test_sim_health_check_is_healthy(spec: dict[str, Any], simulator: Any, canary_key: str) -> None:
    provider = sim_provider(spec, simulator, canary_key)
    health = await provider.health_check()
    assert health.is_healthy
    assert health.last_error is None
    await provider.close()


async def test_sim_wrong_key_is_authentication_error_without_the_key_in_it(
    spec: dict[str, Any], simulator: Any, canary_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    from greenlang_llm.simulator import SimulatorConfig

    caplog.set_level(logging.DEBUG)
    simulator.config.valid_keys_sha256 = SimulatorConfig.hash_keys(["sk-test-the-right-one"])
    provider = sim_provider(spec, simulator, canary_key)
    with pytest.raises(AuthenticationError) as info:
        await provider.generate(SIM_REQUEST)
    assert info.value.status_code == 401
    assert canary_key not in f"{info.value} {info.value!r} {provider!r}"
    assert all(canary_key not in r.getMessage() for r in caplog.records)
    await provider.close()


async def test_sim_a_stream_longer_than_timeout_is_not_cut_while_it_keeps_producing(
    spec: dict[str, Any], simulator: Any, canary_key: str
) -> None:
    from greenlang_llm.simulator import ModelBehaviour

    model = SIM_MODELS["anthropic" if spec["cls"] is AnthropicProvider else "openai"][0]
    simulator.config.models[model] = ModelBehaviour(reply_tokens=8, token_ms=40)  # ~0.3 s in all
    provider = sim_provider(spec, simulator, canary_key, timeout=0.2)
    chunks = [c async for c in provider.stream(SIM_REQUEST)]
    assert len(chunks) == 9
    assert chunks[-1].finish_reason == "stop"
    await provider.close()
