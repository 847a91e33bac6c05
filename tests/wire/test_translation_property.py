"""Property: OpenAI → neutral → Anthropic → neutral → OpenAI loses nothing docs/fields.md keeps.

For random valid Chat Completions requests (system text, user text and ``image_url`` parts,
assistant ``tool_calls`` answered by ``tool`` messages with the same ids, function tools with
simple object schemas, ``tool_choice``, ``parallel_tool_calls``, ``response_format`` json_schema,
``temperature``, ``top_p``, ``stop``, ``max_completion_tokens``, ``user``, ``reasoning_effort``):

    body ─openai.parse_request→ neutral ─anthropic.build_request→ Anthropic body
         ─anthropic.parse_request→ neutral ─openai.build_request→ OpenAI body

(origins dropped before each build, so every hop is a translation). Every field the table says
is translated must come back with the same meaning — compared semantically: tool arguments as
parsed JSON, ids equal, image URLs equal, system text equal — unless the first hop said it left
it out (``wire.anthropic.fit(...).dropped``: Anthropic takes no ``temperature`` below 1 beside
extended thinking, for instance). Nothing may be refused.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenlang_llm.wire import anthropic as wa
from greenlang_llm.wire import openai as wo

WORD = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8)
TEXT = st.lists(WORD, min_size=1, max_size=5).map(" ".join)
NAME = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12).filter(lambda s: s.strip("_"))
JSON_VALUE = st.one_of(st.integers(-1000, 1000), st.booleans(), TEXT, st.none())
ARGUMENTS = st.dictionaries(NAME, JSON_VALUE, max_size=4)
EFFORTS = ["low", "medium", "high"]
BUDGETS = {"low": 1024, "medium": 2048, "high": 4096}
"""docs/fields.md: ``reasoning_effort`` → ``thinking.budget_tokens``."""
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@st.composite
def image_parts(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        media = draw(st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"]))
        url = f"data:{media};base64,{draw(st.sampled_from([PNG, 'R0lGODlhAQABAAAAACw=', 'AAAA']))}"
    else:
        url = f"https://example.com/{draw(WORD)}.png"
    return {"type": "image_url", "image_url": {"url": url}}


@st.composite
def user_messages(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"role": "user", "content": draw(TEXT)}
    parts = draw(
        st.lists(
            st.one_of(TEXT.map(lambda t: {"type": "text", "text": t}), image_parts()), min_size=1, max_size=4
        )
    )
    return {"role": "user", "content": parts}


@st.composite
def schemas(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(NAME, min_size=0, max_size=4, unique=True))
    properties = {
        n: {"type": draw(st.sampled_from(["string", "integer", "boolean", "number"]))} for n in names
    }
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if names and draw(st.booleans()):
        schema["required"] = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    if draw(st.booleans()):
        schema["additionalProperties"] = False
    return schema


@st.composite
def tool_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    tools = []
    for name in names:
        function: dict[str, Any] = {"name": name, "parameters": draw(schemas())}
        if draw(st.booleans()):
            function["description"] = draw(TEXT)
        if draw(st.booleans()):
            function["strict"] = draw(st.booleans())
        tools.append({"type": "function", "function": function})
    return tools


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    tools = draw(st.one_of(st.none(), tool_lists()))
    tool_names = [t["function"]["name"] for t in tools or ()]
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": draw(st.sampled_from(["system", "developer"])), "content": draw(TEXT)})
    ids = iter(f"call_{i}{draw(WORD)}" for i in range(1000))
    for _ in range(draw(st.integers(0, 3))):  # earlier exchanges
        messages.append(draw(user_messages()))
        if tool_names and draw(st.booleans()):
            calls = [
                {
                    "id": next(ids),
                    "type": "function",
                    "function": {
                        "name": draw(st.sampled_from(tool_names)),
                        "arguments": orjson.dumps(draw(ARGUMENTS)).decode(),
                    },
                }
                for _ in range(draw(st.integers(1, 3)))
            ]
            assistant: dict[str, Any] = {
                "role": "assistant",
                "content": draw(st.one_of(st.none(), TEXT)),
                "tool_calls": calls,
            }
            messages.append(assistant)
            messages.extend({"role": "tool", "tool_call_id": c["id"], "content": draw(TEXT)} for c in calls)
        else:
            messages.append({"role": "assistant", "content": draw(TEXT)})
    messages.append(draw(user_messages()))
    body: dict[str, Any] = {"model": "gpt-test", "messages": messages}
    if tools is not None:
        body["tools"] = tools
        choice = draw(st.sampled_from(["absent", "auto", "none", "required", "named"]))
        if choice == "named":
            body["tool_choice"] = {
                "type": "function",
                "function": {"name": draw(st.sampled_from(tool_names))},
            }
        elif choice != "absent":
            body["tool_choice"] = choice
        if draw(st.booleans()):
            body["parallel_tool_calls"] = draw(st.booleans())
    if draw(st.booleans()):
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": draw(NAME), "schema": draw(schemas()), "strict": draw(st.booleans())},
        }
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(0, 1, allow_nan=False))
    if draw(st.booleans()):
        body["top_p"] = draw(st.floats(0.01, 1, allow_nan=False))
    if draw(st.booleans()):
        stop = draw(st.lists(WORD, min_size=1, max_size=4, unique=True))
        body["stop"] = stop[0] if len(stop) == 1 and draw(st.booleans()) else stop
    if draw(st.booleans()):
        body["max_completion_tokens"] = draw(st.integers(1, 20_000))
    if draw(st.booleans()):
        body["user"] = draw(WORD)
    if draw(st.booleans()):
        body["reasoning_effort"] = draw(st.sampled_from(EFFORTS))
    return body


# ---------------------------------------------------------------- canonical forms (the meaning kept)


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p["text"] for p in content if p.get("type") == "text")


def _parts(content: Any) -> list[tuple[str, str]]:
    if isinstance(content, str):
        return [("text", content)]
    out = []
    for p in content:
        if p["type"] == "text":
            out.append(("text", p["text"]))
        elif p["type"] == "image_url":
            image = p["image_url"]
            out.append(("image", image["url"] if isinstance(image, dict) else image))
        else:
            out.append((p["type"], orjson.dumps(p).decode()))
    return out


def _merge_text(parts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Adjacent text parts as one (a string content and one text part mean the same)."""
    out: list[tuple[str, str]] = []
    for kind, value in parts:
        if kind == "text" and out and out[-1][0] == "text":
            out[-1] = ("text", out[-1][1] + "\n" + value)
        else:
            out.append((kind, value))
    return out


def canonical_messages(body: dict[str, Any]) -> tuple[str, list[Any]]:
    """(system text, the conversation as comparable tuples)."""
    system: list[str] = []
    out: list[Any] = []
    for m in body["messages"]:
        role = m["role"]
        if role in ("system", "developer") and not out:
            system.append(_text(m["content"]))
        elif role == "user":
            out.append(("user", _merge_text(_parts(m["content"]))))
        elif role == "assistant":
            calls = [
                (c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
                for c in m.get("tool_calls") or ()
            ]
            out.append(("assistant", _text(m.get("content")), calls))
        elif role == "tool":
            out.append(("tool", m["tool_call_id"], _text(m["content"])))
        else:
            out.append((role, _text(m.get("content"))))
    return "\n\n".join(system), out


def canonical_tools(body: dict[str, Any]) -> list[Any] | None:
    tools = body.get("tools")
    if not tools:
        return None
    return [
        (t["type"], t["function"]["name"], t["function"].get("description"), t["function"]["parameters"])
        for t in tools
    ]


def canonical_choice(body: dict[str, Any]) -> Any:
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        return ("named", choice["function"]["name"])
    return choice


def _stop(body: dict[str, Any]) -> list[str] | None:
    stop = body.get("stop")
    return [stop] if isinstance(stop, str) else stop


# ---------------------------------------------------------------- the property


def round_trip(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], tuple[str, ...]]:
    """(the Anthropic body, the OpenAI body after the round trip, what the first hop dropped)."""
    first, _ = wo.parse_request(body)
    fit = wa.fit(first)
    assert fit.refused == (), fit.refused
    anthropic_body = wa.build_request(dataclasses.replace(first, origin=None), "claude-test", stream=False)
    second, _ = wa.parse_request(orjson.loads(orjson.dumps(anthropic_body)))
    back_fit = wo.fit(second)
    assert back_fit.refused == (), back_fit.refused
    assert back_fit.dropped == (), back_fit.dropped  # nothing the first hop wrote is lost on the way back
    back = wo.build_request(dataclasses.replace(second, origin=None), "gpt-test", stream=False)
    return anthropic_body, orjson.loads(orjson.dumps(back)), fit.dropped


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_openai_to_anthropic_and_back_keeps_every_translated_field(body: dict[str, Any]) -> None:
    anthropic_body, back, dropped = round_trip(body)
    assert back["model"] == "gpt-test"
    assert anthropic_body["model"] == "claude-test"
    # messages: system text, text and images in order, tool calls (ids, names, parsed arguments),
    # tool results by id
    assert canonical_messages(back) == canonical_messages(body)
    # tools, as defined; strict where the caller set it
    assert canonical_tools(back) == canonical_tools(body)
    for sent, came in zip(body.get("tools") or (), back.get("tools") or (), strict=True):
        if "strict" in sent["function"]:
            assert came["function"].get("strict", False) == sent["function"]["strict"]
    if body.get("tools"):
        assert canonical_choice(back) == canonical_choice(body)
        if body.get("tool_choice") != "none":  # (with no call to make, parallel calls mean nothing)
            assert back.get("parallel_tool_calls", True) == body.get("parallel_tool_calls", True)
    if "response_format" in body:
        schema = body["response_format"]["json_schema"]["schema"]
        assert back["response_format"]["type"] == "json_schema"
        assert back["response_format"]["json_schema"]["schema"] == schema
    else:
        assert "response_format" not in back
    for name in ("temperature", "top_p", "user"):
        if name in body and name not in dropped:
            assert back.get(name) == body[name], name
    assert _stop(back) == _stop(body)
    if "max_completion_tokens" in body:
        assert back["max_completion_tokens"] == body["max_completion_tokens"]
    effort = body.get("reasoning_effort")
    if effort is not None and "reasoning_effort" not in dropped:
        # the table's budget (minimal/low 1024, medium 2048, high 4096) is kept below max_tokens;
        # when it fits, the effort must come back as it went
        assert back.get("reasoning_effort") is not None
        if body.get("max_completion_tokens", 0) > BUDGETS[effort]:
            assert anthropic_body["thinking"] == {"type": "enabled", "budget_tokens": BUDGETS[effort]}
            assert back["reasoning_effort"] == effort, (effort, anthropic_body["thinking"])
    # a hop may leave out only what it says it leaves out, and only hints
    assert set(dropped) <= {"temperature", "top_p", "reasoning_effort"}, dropped
