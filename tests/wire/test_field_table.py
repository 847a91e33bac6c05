"""The field table's lists: one place, each API's own exported by its wire module, hints and
meaning apart, and each list used by the other API's fit."""

from __future__ import annotations

import pytest

from greenlang_llm import GenerationRequest
from greenlang_llm.content import WireOrigin
from greenlang_llm.wire import anthropic, field_table, openai


def test_each_wire_module_exports_its_own_apis_lists() -> None:
    assert openai.HINT_FIELDS is field_table.OPENAI_HINTS
    assert openai.MEANING_FIELDS is field_table.OPENAI_MEANING
    assert anthropic.HINT_FIELDS is field_table.ANTHROPIC_HINTS
    assert anthropic.MEANING_FIELDS is field_table.ANTHROPIC_MEANING
    assert not field_table.OPENAI_HINTS & field_table.OPENAI_MEANING
    assert not field_table.ANTHROPIC_HINTS & field_table.ANTHROPIC_MEANING


@pytest.mark.parametrize("name", sorted(field_table.OPENAI_HINTS - {"seed", "presence_penalty",
                                                                    "frequency_penalty", "logit_bias",
                                                                    "service_tier"}))
def test_an_openai_callers_unknown_hint_is_dropped_by_claude(name: str) -> None:
    request = GenerationRequest(prompt="x", origin=WireOrigin("openai", {name: 1}, (name,)))
    assert anthropic.fit(request).dropped == (name,)
    assert anthropic.fit(request).refused == ()


@pytest.mark.parametrize("name", sorted(field_table.ANTHROPIC_HINTS))
def test_an_anthropic_callers_hint_is_dropped_by_gpt(name: str) -> None:
    request = GenerationRequest(prompt="x", origin=WireOrigin("anthropic", {name: 1}, (name,)))
    assert openai.fit(request).dropped == (name,)


@pytest.mark.parametrize(("api", "name"), [
    *(("openai", n) for n in sorted(field_table.OPENAI_MEANING)),
    *(("anthropic", n) for n in sorted(field_table.ANTHROPIC_MEANING)),
    ("openai", "never_heard_of_it"), ("anthropic", "never_heard_of_it"),
])
def test_meaning_and_unknown_fields_are_refused_by_the_other_api(api: str, name: str) -> None:
    request = GenerationRequest(prompt="x", origin=WireOrigin(api, {name: 1}, (name,)))
    other = anthropic if api == "openai" else openai
    assert other.fit(request).refused == (name,)
