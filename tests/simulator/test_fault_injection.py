"""Every fault kind surfaces in the official SDKs as their own exception class.

Faults are requested per call with the ``x-sim-fault`` header (rate 1); rules
from config and the admin endpoint are covered in test_admin.py. SDK clients
use ``max_retries=0`` so each fault is seen once, fast.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from greenlang_llm._errors import StreamInterruptedError
from greenlang_llm.simulator import Simulator
from greenlang_llm.wire import anthropic as wa
from greenlang_llm.wire import openai as wo
from greenlang_llm.wire.sse import SSEDecoder

KEY = "sk-test-canary"
HELLO: list[Any] = [{"role": "user", "content": "Hello there"}]


def aclient(sim: Simulator, timeout: float = 5.0) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=KEY, base_url=sim.base_url, max_retries=0, timeout=timeout)


def oclient(sim: Simulator, timeout: float = 5.0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=KEY, base_url=sim.openai_base_url, max_retries=0, timeout=timeout)


async def a_call(sim: Simulator, fault: str, client_timeout: float = 5.0) -> Any:
    return await aclient(sim, client_timeout).messages.create(
        model="m", max_tokens=5, messages=HELLO, extra_headers={"x-sim-fault": fault}
    )


async def o_call(sim: Simulator, fault: str, client_timeout: float = 5.0) -> Any:
    return await oclient(sim, client_timeout).chat.completions.create(
        model="m", max_completion_tokens=5, messages=HELLO, extra_headers={"x-sim-fault": fault}
    )


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("http_500", anthropic.InternalServerError, 500),
        ("503", anthropic.ServiceUnavailableError, 503),
        ("down", anthropic.ServiceUnavailableError, 503),
        ("529", anthropic.OverloadedError, 529),
        ("overloaded", anthropic.OverloadedError, 529),
        ("auth", anthropic.AuthenticationError, 401),
        ("bad_request", anthropic.BadRequestError, 400),
        ("context_length", anthropic.BadRequestError, 400),
        ("content_policy", anthropic.BadRequestError, 400),
        ("not_found", anthropic.NotFoundError, 404),
    ],
)
async def test_anthropic_status_faults_raise_the_sdk_class(
    simulator: Simulator, fault: str, error: type[anthropic.APIStatusError], status: int
) -> None:
    with pytest.raises(error) as info:
        await a_call(simulator, fault)
    assert info.value.status_code == status
    assert info.value.response.headers["request-id"].startswith("req_sim")
    body = info.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == wa.error_type_for_status(status)


@pytest.mark.parametrize(
    ("fault", "error", "status", "code"),
    [
        ("500", openai.InternalServerError, 500, None),
        ("http_503", openai.InternalServerError, 503, None),
        ("overloaded", openai.InternalServerError, 503, None),
        ("down", openai.InternalServerError, 503, None),
        ("401", openai.AuthenticationError, 401, "invalid_api_key"),
        ("400", openai.BadRequestError, 400, None),
        ("context_length", openai.BadRequestError, 400, "context_length_exceeded"),
        ("content_policy", openai.BadRequestError, 400, "content_policy_violation"),
        ("404", openai.NotFoundError, 404, "model_not_found"),
    ],
)
async def test_openai_status_faults_raise_the_sdk_class(
    simulator: Simulator, fault: str, error: type[openai.APIStatusError], status: int, code: str | None
) -> None:
    with pytest.raises(error) as info:
        await o_call(simulator, fault)
    assert info.value.status_code == status
    assert info.value.code == code
    assert info.value.response.headers["x-request-id"].startswith("req_sim")


async def test_rate_limit_carries_retry_after_in_both_apis(simulator: Simulator) -> None:
    with pytest.raises(anthropic.RateLimitError) as a_info:
        await a_call(simulator, "rate_limit;retry_after=2.5")
    assert a_info.value.response.headers["retry-after"] == "3"  # Anthropic: whole seconds
    with pytest.raises(openai.RateLimitError) as o_info:
        await o_call(simulator, "429;retry_after=2.5")
    assert o_info.value.response.headers["retry-after"] == "3"
    assert o_info.value.response.headers["retry-after-ms"] == "2500"
    assert o_info.value.code == "rate_limit_exceeded"


async def test_reset_is_a_connection_error(simulator: Simulator) -> None:
    with pytest.raises(anthropic.APIConnectionError):
        await a_call(simulator, "reset")
    with pytest.raises(openai.APIConnectionError):
        await o_call(simulator, "connection_reset")
    assert simulator.stats.faults["reset"] == 2


async def test_slow_answer_past_the_client_timeout_is_a_timeout(simulator: Simulator) -> None:
    with pytest.raises(anthropic.APITimeoutError):
        await a_call(simulator, "slow;delay=10", client_timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        await o_call(simulator, "timeout;delay=10", client_timeout=0.2)


async def test_slow_answer_within_the_timeout_still_succeeds(simulator: Simulator) -> None:
    message = await a_call(simulator, "slow;delay=0.05")
    assert message.usage.output_tokens == 5


async def test_prefill_fault_fires_only_when_the_last_message_is_the_assistants(simulator: Simulator) -> None:
    prefill = [*HELLO, {"role": "assistant", "content": "Sure,"}]
    with pytest.raises(openai.BadRequestError, match="prefill"):
        await oclient(simulator).chat.completions.create(
            model="m", messages=prefill, extra_headers={"x-sim-fault": "prefill"}
        )
    assert await o_call(simulator, "prefill")  # last message is the user's: no fault


async def test_anthropic_error_event_mid_stream_is_an_api_status_error(simulator: Simulator) -> None:
    texts: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info:  # noqa: PT012
        async with aclient(simulator).messages.stream(
            model="m", max_tokens=8, messages=HELLO, extra_headers={"x-sim-fault": "stream_error;after=3"}
        ) as stream:
            async for text in stream.text_stream:
                texts.append(text)
    assert len(texts) == 3
    assert info.value.status_code == 200  # fixture rule 5: in-stream errors keep the 200
    assert simulator.stats.streams["errored"] == 1


async def test_openai_error_payload_mid_stream_is_an_api_error(simulator: Simulator) -> None:
    texts: list[str] = []
    with pytest.raises(openai.APIError, match="Internal server error"):  # noqa: PT012
        stream = await oclient(simulator).chat.completions.create(
            model="m", messages=HELLO, stream=True, extra_headers={"x-sim-fault": "stream_error;after=2"}
        )
        async for chunk in stream:
            texts.append(chunk.choices[0].delta.content or "")
    assert len([t for t in texts if t]) == 2


async def test_stream_cut_keeps_the_partial_text_then_fails(simulator: Simulator) -> None:
    texts: list[str] = []
    with pytest.raises(openai.APIConnectionError):  # noqa: PT012
        stream = await oclient(simulator).chat.completions.create(
            model="m", messages=HELLO, stream=True, extra_headers={"x-sim-fault": "stream_cut;after=4"}
        )
        async for chunk in stream:
            texts.append(chunk.choices[0].delta.content or "")
    assert len([t for t in texts if t]) == 4
    assert simulator.stats.streams["cut"] == 1


async def test_stall_after_some_tokens_times_the_client_out(simulator: Simulator) -> None:
    texts: list[str] = []
    with pytest.raises(openai.APITimeoutError):  # noqa: PT012
        stream = await oclient(simulator, timeout=0.3).chat.completions.create(
            model="m", messages=HELLO, stream=True, extra_headers={"x-sim-fault": "stall;after=2;delay=30"}
        )
        async for chunk in stream:
            texts.append(chunk.choices[0].delta.content or "")
    assert len([t for t in texts if t]) == 2


async def raw_stream(sim: Simulator, api: str, fault: str) -> bytes:
    """The raw body of a faulted stream, read with the official SDK's HTTP layer."""
    if api == "anthropic":
        response = await aclient(sim).messages.with_raw_response.create(
            model="m", max_tokens=6, messages=HELLO, stream=True, extra_headers={"x-sim-fault": fault}
        )
    else:
        response = await oclient(sim).chat.completions.with_raw_response.create(
            model="m",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-sim-fault": fault},
        )
    return await response.http_response.aread()


@pytest.mark.parametrize("api", ["anthropic", "openai"])
@pytest.mark.parametrize("fault", ["no_terminal", "invalid_json", "stream_error;after=1"])
async def test_broken_streams_are_caught_by_our_wire_parsers(
    simulator: Simulator, api: str, fault: str
) -> None:
    body = await raw_stream(simulator, api, fault)
    parser: wa.StreamParser | wo.StreamParser = wa.StreamParser() if api == "anthropic" else wo.StreamParser()
    decoder = SSEDecoder()
    with pytest.raises(StreamInterruptedError) as info:  # noqa: PT012
        for event in [*decoder.feed(body), *decoder.flush()]:
            parser.feed(event)
        parser.finish()
    if fault == "no_terminal":
        assert len(info.value.partial_text.split()) == 6 if api == "anthropic" else 16


async def test_bad_fault_header_is_a_400_naming_it(simulator: Simulator) -> None:
    with pytest.raises(openai.BadRequestError, match="x-sim-fault"):
        await o_call(simulator, "explode")


@pytest.mark.parametrize("api", ["anthropic", "openai"])
@pytest.mark.parametrize(("fault", "sent"), [("no_terminal", None), ("stream_error;after=2", 2)])
async def test_token_stats_count_the_tokens_a_broken_stream_sent(
    simulator: Simulator, api: str, fault: str, sent: int | None
) -> None:
    body = await raw_stream(simulator, api, fault)
    parser: wa.StreamParser | wo.StreamParser = wa.StreamParser() if api == "anthropic" else wo.StreamParser()
    decoder = SSEDecoder()
    with pytest.raises(StreamInterruptedError) as info:  # noqa: PT012
        for event in [*decoder.feed(body), *decoder.flush()]:
            parser.feed(event)
        parser.finish()
    delivered = len(info.value.partial_text.split())
    # no_terminal sends every token (6 = max_tokens, or 16 = reply_tokens) before ending
    assert delivered == (sent if sent is not None else 6 if api == "anthropic" else 16)
    assert simulator.stats.snapshot()["tokens"] == {"input": 9, "output": delivered}
