"""The simulator driven by the official SDKs, unmodified: exact replies and usage.

Expected numbers follow the documented reply function (docs/simulator.md):
``[{"role": "user", "content": "Hello there"}]`` counts 3 + (4 + 2) = 9 input
tokens; a reply is ``min(max_tokens, reply_tokens=16)`` words.
"""

from __future__ import annotations

import asyncio

import anthropic
import openai
import pytest

from greenlang_llm.simulator import ModelBehaviour, Simulator, SimulatorConfig
from greenlang_llm.simulator.replies import VOCAB

KEY = "sk-test-canary"
HELLO = [{"role": "user", "content": "Hello there"}]


def sync_anthropic(sim: Simulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=sim.base_url, max_retries=0)


def async_anthropic(sim: Simulator) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=KEY, base_url=sim.base_url, max_retries=0)


def sync_openai(sim: Simulator) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=sim.openai_base_url, max_retries=0)


def async_openai(sim: Simulator) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=KEY, base_url=sim.openai_base_url, max_retries=0)


async def test_anthropic_async_plain_reply_has_exact_usage(simulator: Simulator) -> None:
    client = async_anthropic(simulator)
    message = await client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=HELLO)
    assert message.usage.input_tokens == 9
    assert message.usage.output_tokens == 16
    assert message.stop_reason == "end_turn"
    text = message.content[0].text  # type: ignore[union-attr]
    assert len(text.split()) == 16
    assert set(text.split()) <= set(VOCAB)
    again = await client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=HELLO)
    assert again.content[0].text == text  # type: ignore[union-attr]
    other = await client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=HELLO)
    assert other.content[0].text != text  # type: ignore[union-attr]


async def test_anthropic_sync_plain_and_streaming_agree(simulator: Simulator) -> None:
    def run() -> tuple[str, str, int, int, str | None]:
        client = sync_anthropic(simulator)
        plain = client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=HELLO)
        with client.messages.stream(model="claude-sonnet-4-6", max_tokens=5, messages=HELLO) as stream:
            streamed = "".join(stream.text_stream)
            final = stream.get_final_message()
        return (
            plain.content[0].text,
            streamed,
            final.usage.input_tokens,
            final.usage.output_tokens,
            final.stop_reason,
        )  # type: ignore[union-attr]

    plain_text, streamed, input_tokens, output_tokens, stop_reason = await asyncio.to_thread(run)
    assert streamed == plain_text
    assert (input_tokens, output_tokens, stop_reason) == (9, 5, "max_tokens")


async def test_anthropic_async_stream_reports_cache_tokens_per_model() -> None:
    config = SimulatorConfig(models={"cached": ModelBehaviour(cache_read_tokens=100, cache_write_tokens=20)})
    async with Simulator(config) as sim:
        client = async_anthropic(sim)
        async with client.messages.stream(model="cached", max_tokens=3, messages=HELLO) as stream:
            pieces = [t async for t in stream.text_stream]
            final = await stream.get_final_message()
    assert len(pieces) == 3
    usage = final.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (
        9,
        100,
        20,
    )
    assert usage.output_tokens == 3


async def test_anthropic_count_tokens_matches_the_generation_input(simulator: Simulator) -> None:
    client = async_anthropic(simulator)
    counted = await client.messages.count_tokens(
        model="claude-sonnet-4-6", system="Be brief.", messages=HELLO
    )
    assert counted.input_tokens == 9 + 4 + 3
    message = await client.messages.create(
        model="claude-sonnet-4-6", system="Be brief.", max_tokens=1, messages=HELLO
    )
    assert message.usage.input_tokens == counted.input_tokens


async def test_anthropic_models_list(simulator: Simulator) -> None:
    page = await async_anthropic(simulator).models.list()
    assert [m.id for m in page.data] == ["claude-sonnet-4-6", "gpt-4.1-mini"]


async def test_openai_async_plain_reply_has_exact_usage(simulator: Simulator) -> None:
    client = async_openai(simulator)
    completion = await client.chat.completions.create(
        model="gpt-4.1-mini",
        max_completion_tokens=4,
        messages=[{"role": "system", "content": "Be brief."}, *HELLO],
    )
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (16, 4)
    assert completion.usage.total_tokens == 20
    assert completion.choices[0].finish_reason == "length"
    assert len((completion.choices[0].message.content or "").split()) == 4


async def test_openai_sync_stream_with_usage_matches_plain(simulator: Simulator) -> None:
    def run() -> tuple[str, str, list[int]]:
        client = sync_openai(simulator)
        plain = client.chat.completions.create(model="gpt-4.1-mini", messages=HELLO)  # type: ignore[arg-type]
        stream = client.chat.completions.create(
            model="gpt-4.1-mini",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
        text, usage = [], []
        for chunk in stream:
            if chunk.choices:
                text.append(chunk.choices[0].delta.content or "")
            if chunk.usage:
                usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens]
        return plain.choices[0].message.content or "", "".join(text), usage

    plain, streamed, usage = await asyncio.to_thread(run)
    assert streamed == plain
    assert usage == [9, 16]


async def test_openai_async_stream_without_include_usage_has_no_usage_chunk(simulator: Simulator) -> None:
    client = async_openai(simulator)
    stream = await client.chat.completions.create(model="m", messages=HELLO, stream=True)  # type: ignore[arg-type]
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_openai_reports_cached_tokens_inside_prompt_tokens() -> None:
    config = SimulatorConfig(defaults=ModelBehaviour(cache_read_tokens=100))
    async with Simulator(config) as sim:
        completion = await async_openai(sim).chat.completions.create(model="m", messages=HELLO)  # type: ignore[arg-type]
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 109
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 100


async def test_openai_models_list(simulator: Simulator) -> None:
    page = await async_openai(simulator).models.list()
    assert [m.id for m in page.data] == ["claude-sonnet-4-6", "gpt-4.1-mini"]


async def test_openai_rejects_both_max_token_fields_like_the_real_api(simulator: Simulator) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await async_openai(simulator).chat.completions.create(
            model="m",
            messages=HELLO,
            max_tokens=5,
            max_completion_tokens=5,  # type: ignore[arg-type]
        )
    assert info.value.code == "invalid_parameter_combination"
    assert info.value.param == "max_tokens"


async def test_stop_sequence_matching_a_reply_word_ends_the_reply(simulator: Simulator) -> None:
    client = async_anthropic(simulator)
    full = await client.messages.create(model="m", max_tokens=100, messages=HELLO)
    words = full.content[0].text.split()  # type: ignore[union-attr]
    stop = words[3]
    cut = await client.messages.create(model="m", max_tokens=100, messages=HELLO, stop_sequences=[stop])
    assert cut.stop_reason == "stop_sequence"
    assert cut.stop_sequence == stop
    assert cut.content[0].text.split() == words[: words.index(stop)]  # type: ignore[union-attr]


async def test_new_anthropic_version_rejects_temperature(simulator: Simulator) -> None:
    client = anthropic.AsyncAnthropic(
        api_key=KEY,
        base_url=simulator.base_url,
        max_retries=0,
        default_headers={"anthropic-version": "2026-10-21"},
    )
    with pytest.raises(anthropic.BadRequestError, match="temperature"):
        await client.messages.create(model="m", max_tokens=5, messages=HELLO, extra_body={"temperature": 0.5})
    old = client.with_options(default_headers={"anthropic-version": "2023-06-01"})
    assert (
        await old.messages.create(model="m", max_tokens=5, messages=HELLO, extra_body={"temperature": 0.5})
    ).usage


async def test_stats_count_requests_statuses_models_and_tokens(simulator: Simulator) -> None:
    await async_anthropic(simulator).messages.create(model="a", max_tokens=2, messages=HELLO)
    await async_openai(simulator).chat.completions.create(model="b", max_completion_tokens=3, messages=HELLO)  # type: ignore[arg-type]
    snap = simulator.stats.snapshot()
    assert snap["requests"] == 2
    assert snap["by_path"] == {"/v1/messages": 1, "/v1/chat/completions": 1}
    assert snap["by_status"] == {"200": 2}
    assert snap["by_model"] == {"a": 1, "b": 1}
    assert snap["tokens"] == {"input": 18, "output": 5}
