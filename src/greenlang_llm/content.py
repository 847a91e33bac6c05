"""The provider-neutral content model: what a message, a tool and a stream delta can hold.

Every layer speaks these shapes — the router, the providers, the gateway, the simulator —
and only ``wire/`` knows how each API spells them, so an OpenAI caller's tool call can be
answered by Claude and the reverse. The shapes are plain dicts described by ``TypedDict``
(what JSON parsing gives, at no conversion cost), with one rule: a block's ``type`` says
which of the shapes below it is.

Content blocks (``Message["content"]`` when it is a list):

- ``{"type": "text", "text": str}``
- ``{"type": "image", "media_type": str, "data": <base64 str>}`` or ``{"type": "image", "url": str}``
  (``detail`` optional: OpenAI's low/high/auto)
- ``{"type": "document", "media_type": str, "data": <base64>}`` or ``{"type": "document", "url": str}``
  (``title`` optional; PDF is the common case)
- ``{"type": "tool_call", "id": str, "name": str, "arguments": <JSON text>}`` (assistant turns)
- ``{"type": "tool_result", "tool_call_id": str, "content": str | [text/image blocks],
  "is_error": bool}`` (user turns; OpenAI's ``tool`` messages become these)
- ``{"type": "thinking", "text": str, "signature": str}`` and
  ``{"type": "redacted_thinking", "data": str}`` (assistant turns)

Any block may carry ``cache_control`` (Anthropic's prompt-cache marker). A block of another
``type`` is kept as it is (an API's own block: Anthropic's ``search_result``, OpenAI's
``input_audio``...); ``wire`` forwards it to its own API and refuses it for the other.

:func:`normalize_messages` accepts the neutral shapes and both APIs' native ones (Anthropic
``image`` with a ``source``, ``tool_use``, ``tool_result`` with ``tool_use_id``; OpenAI
``image_url``, ``file``, assistant ``tool_calls``, ``tool`` messages), so code written for
either API keeps working against every provider.

Streams: a provider's chunk carries text as ``StreamChunk.text``; anything else (a thinking
delta, a tool call opening, its arguments) travels as :class:`Delta` objects in
``StreamChunk.deltas``, in order and with the text deltas among them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

import orjson

from ._errors import InvalidRequestError

__all__ = [
    "NEUTRAL_KINDS",
    "Block",
    "Delta",
    "DocumentBlock",
    "ImageBlock",
    "Reasoning",
    "RedactedThinkingBlock",
    "ResponseFormat",
    "TextBlock",
    "ThinkingBlock",
    "ToolCallBlock",
    "ToolChoice",
    "ToolDefinition",
    "ToolResultBlock",
    "WireOrigin",
    "normalize_block",
    "normalize_messages",
    "output_pieces",
    "tool_calls_of",
]


class TextBlock(TypedDict):
    type: Literal["text"]
    text: str
    cache_control: NotRequired[dict[str, Any]]


class ImageBlock(TypedDict):
    type: Literal["image"]
    media_type: NotRequired[str]
    data: NotRequired[str]
    """Base64, without the ``data:`` prefix."""
    url: NotRequired[str]
    detail: NotRequired[str]
    cache_control: NotRequired[dict[str, Any]]


class DocumentBlock(TypedDict):
    type: Literal["document"]
    media_type: NotRequired[str]
    data: NotRequired[str]
    url: NotRequired[str]
    text: NotRequired[str]
    """A plain-text document (Anthropic's ``text`` source)."""
    title: NotRequired[str]
    cache_control: NotRequired[dict[str, Any]]


class ToolCallBlock(TypedDict):
    type: Literal["tool_call"]
    id: str
    name: str
    arguments: str
    """The arguments as JSON text, exactly as the model wrote them (it may be invalid JSON)."""


class ToolResultBlock(TypedDict):
    type: Literal["tool_result"]
    tool_call_id: str
    content: str | list[dict[str, Any]]
    is_error: NotRequired[bool]
    cache_control: NotRequired[dict[str, Any]]


class ThinkingBlock(TypedDict):
    type: Literal["thinking"]
    text: str
    signature: NotRequired[str]


class RedactedThinkingBlock(TypedDict):
    type: Literal["redacted_thinking"]
    data: str


Block = dict[str, Any]
"""One content block in the neutral vocabulary (the TypedDicts above describe each kind)."""


class ToolDefinition(TypedDict):
    """A function the model may call. A tool with a ``type`` of its own (Anthropic's server
    tools, OpenAI's custom tools) is kept as its API sent it and served by that API only."""

    name: str
    description: NotRequired[str]
    parameters: dict[str, Any]
    """JSON Schema of the arguments (an object schema)."""
    strict: NotRequired[bool]
    cache_control: NotRequired[dict[str, Any]]


ToolChoice = str | dict[str, Any]
"""``"auto"``, ``"none"``, ``"required"`` (call some tool) or ``{"name": "<tool>"}`` (that one)."""


class ResponseFormat(TypedDict):
    """``{"type": "json_schema", "name", "schema", "strict"?, "description"?}`` or
    ``{"type": "json_object"}`` (any JSON object)."""

    type: Literal["json_schema", "json_object"]
    name: NotRequired[str]
    schema: NotRequired[dict[str, Any]]
    strict: NotRequired[bool]
    description: NotRequired[str]


class Reasoning(TypedDict, total=False):
    """How much the model should think before answering: an ``effort`` (``none``, ``minimal``,
    ``low``, ``medium``, ``high``, ``xhigh``, ``max``) or a ``budget_tokens`` (Anthropic's
    extended thinking), or ``adaptive`` (the model decides). ``display`` is Anthropic's
    summarized/omitted thinking text."""

    effort: str
    budget_tokens: int
    adaptive: bool
    display: str


REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


@dataclass(frozen=True, slots=True)
class WireOrigin:
    """The caller's request as its API sent it, kept beside the neutral fields.

    A provider speaking the same API sends ``body`` itself (only ``model`` rewritten, and the
    stream flags streaming needs), so fields this project does not know still reach the
    upstream; a provider of the other API translates the neutral fields and refuses the
    ``unknown`` ones (it cannot know what they mean).
    """

    api: str
    """``openai`` or ``anthropic``."""
    body: Mapping[str, Any]
    unknown: tuple[str, ...] = ()
    """Top-level fields no neutral field covers."""
    plain: bool = False
    """The parser found nothing beyond plain text in ``body`` (the plain fields, string or text
    contents, nothing another API would drop): the request is then not ``rich`` and the router
    asks no provider about it. False, the safe default, makes it ``rich``."""


@dataclass(frozen=True, slots=True)
class Delta:
    """One non-trivial piece of a stream, in the neutral vocabulary.

    ``kind``: ``text``, ``refusal``, ``thinking``, ``signature`` (a thinking block's signature),
    ``redacted_thinking`` (``text`` holds its data), ``tool_call`` (a call opens: ``id``,
    ``name``), ``tool_arguments`` (a piece of the open call's JSON arguments), ``logprobs``
    (``value``: the API's log-probability object for the text of this chunk), ``fields`` (``value``:
    keys of an API's own delta the neutral stream has no shape for, relayed only to a caller of that
    API, e.g. OpenAI's ``audio``), ``meta`` (stream-level fields), ``block`` (an API's own block).

    ``index`` numbers the answer's content blocks in order of appearance, so a writer knows
    when a block ends and another begins (Anthropic's ``index``; for OpenAI, each tool call
    and the text get their own).
    """

    kind: str
    index: int
    text: str = ""
    id: str = ""
    name: str = ""
    value: Any = None


# ---------------------------------------------------------------- normalisation

NEUTRAL_KINDS = frozenset(
    {"text", "image", "document", "tool_call", "tool_result", "thinking", "redacted_thinking"})
"""The block types of the neutral vocabulary; any other is an API's own block."""


def _data_url(url: str) -> tuple[str, str] | None:
    """``data:<media>;base64,<data>`` → (media, data); None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[: -len(";base64")] or "application/octet-stream", data


def _source(block: Mapping[str, Any], kind: str, where: str) -> dict[str, Any] | None:
    """An Anthropic ``source`` (base64 / url / text) as neutral keys; None for a source only the
    Anthropic API understands (an uploaded ``file``, a ``content`` list): the block stays native."""
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise InvalidRequestError(f"{where}: {kind} block needs a 'source' object")
    stype = source.get("type")
    if stype in ("file", "content"):
        return None
    if stype == "base64":
        data = source.get("data")
        if not isinstance(data, str) or not data:
            raise InvalidRequestError(f"{where}: {kind} source.data must be a non-empty base64 string")
        return {"media_type": str(source.get("media_type") or ""), "data": data}
    if stype == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url:
            raise InvalidRequestError(f"{where}: {kind} source.url must be a non-empty string")
        return {"url": url}
    if stype == "text" and kind == "document":
        media = str(source.get("media_type") or "text/plain")
        return {"media_type": media, "text": str(source.get("data") or "")}
    raise InvalidRequestError(f"{where}: {kind} source type {stype!r} is not supported")


def _with_cache(out: dict[str, Any], block: Mapping[str, Any]) -> dict[str, Any]:
    cache = block.get("cache_control")
    if cache is not None:
        out["cache_control"] = cache
    return out


def _located(block: Mapping[str, Any], kind: str, where: str) -> Block:
    """A neutral image or document, which must say where its bytes are: ``data`` or ``url`` (a
    document may hold ``text``); an empty one would reach a provider as an empty data URI."""
    for key in ("data", "url", "text") if kind == "document" else ("data", "url"):
        value = block.get(key)
        if isinstance(value, str) and value:
            return dict(block)
    raise InvalidRequestError(f"{where}: an {kind} block needs 'data' (base64) or 'url'")


def normalize_block(block: Mapping[str, Any], where: str = "content") -> Block:
    """One block, in any of the three vocabularies, as a neutral block (unknown types as they are)."""
    kind = block.get("type")
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise InvalidRequestError(f"{where}: a text block needs a string 'text'")
        return block if isinstance(block, dict) else dict(block)
    if kind == "image":
        if "source" in block:
            keys = _source(block, "image", where)
            return dict(block) if keys is None else _with_cache({"type": "image", **keys}, block)
        return _located(block, "image", where)
    if kind == "image_url":
        image = block.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        if not isinstance(url, str) or not url:
            raise InvalidRequestError(f"{where}: image_url block needs image_url.url")
        out: dict[str, Any] = {"type": "image"}
        parsed = _data_url(url)
        if parsed is not None:
            out["media_type"], out["data"] = parsed
        elif url.startswith("data:"):
            raise InvalidRequestError(
                f"{where}: image_url.url is not a base64 data URI (data:<type>;base64,<data>)")
        else:
            out["url"] = url
        if isinstance(image, Mapping) and image.get("detail") is not None:
            out["detail"] = image["detail"]
        return out
    if kind == "document":
        if "source" in block:
            keys = _source(block, "document", where)
            if keys is None:
                return dict(block)
            out = {"type": "document", **keys}
            for name in ("title", "context", "citations"):
                if block.get(name) is not None:
                    out[name] = block[name]
            return _with_cache(out, block)
        return _located(block, "document", where)
    if kind == "file":
        file = block.get("file")
        if not isinstance(file, Mapping):
            raise InvalidRequestError(f"{where}: file block needs a 'file' object")
        data = file.get("file_data")
        if not isinstance(data, str):
            return dict(block)  # a file_id: an OpenAI upload, meaningful to OpenAI only
        parsed = _data_url(data)
        out = {"type": "document"}
        if parsed is not None:
            out["media_type"], out["data"] = parsed
        else:
            out["media_type"], out["data"] = "application/pdf", data
        if isinstance(file.get("filename"), str):
            out["title"] = file["filename"]
        return out
    if kind == "tool_use":
        arguments = orjson.dumps(block.get("input") if block.get("input") is not None else {}).decode()
        return {"type": "tool_call", "id": str(block.get("id") or ""), "name": str(block.get("name") or ""),
                "arguments": arguments}
    if kind == "tool_result" and not isinstance(block.get("tool_use_id", block.get("tool_call_id")), str):
        raise InvalidRequestError(f"{where}: a tool_result block needs the id of its tool call")
    if kind == "tool_result" and "tool_use_id" in block:
        content = block.get("content", "")
        if isinstance(content, list):
            content = [normalize_block(b, where) if isinstance(b, Mapping) else b for b in content]
        out = {"type": "tool_result", "tool_call_id": str(block["tool_use_id"]), "content": content}
        if block.get("is_error"):
            out["is_error"] = True
        return _with_cache(out, block)
    if kind == "thinking" and "thinking" in block:
        out = {"type": "thinking", "text": str(block.get("thinking") or "")}
        if block.get("signature") is not None:
            out["signature"] = str(block["signature"])
        return out
    return block if isinstance(block, dict) else dict(block)


def _openai_tool_calls(message: Mapping[str, Any], where: str) -> list[Block]:
    calls = message.get("tool_calls")
    if not calls:
        return []
    if not isinstance(calls, list):
        raise InvalidRequestError(f"{where}.tool_calls must be a list")
    out: list[Block] = []
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InvalidRequestError(f"{where}.tool_calls[{i}] must have function.name")
        arguments = function.get("arguments")
        out.append({
            "type": "tool_call",
            "id": str(call.get("id") or ""),
            "name": function["name"],
            "arguments": arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode(),
        })
    return out


def _blocks(content: Any, where: str) -> list[Block]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [normalize_block(b, f"{where}[{j}]") for j, b in enumerate(content) if isinstance(b, Mapping)]
    raise InvalidRequestError(f"{where} must be a string or a list of blocks")


def normalize_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages in any of the three vocabularies → neutral ``{"role", "content"}`` messages.

    OpenAI's ``tool`` messages become ``tool_result`` blocks of one user turn (consecutive ones
    together, as Anthropic requires); an assistant's ``tool_calls`` become ``tool_call`` blocks
    after its text; a string content stays a string (the common case costs nothing).
    """
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        content = message.get("content")
        where = f"messages[{i}]"
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise InvalidRequestError(f"{where}.tool_call_id is required for a tool message")
            result: Block = {"type": "tool_result", "tool_call_id": call_id,
                             "content": content if isinstance(content, str) else _blocks(content, where)}
            last = out[-1] if out else None
            if (
                last is not None and last["role"] == "user" and isinstance(last["content"], list)
                and last["content"] and all(b.get("type") == "tool_result" for b in last["content"])
            ):
                last["content"].append(result)
            else:
                out.append({"role": "user", "content": [result]})
            continue
        calls = _openai_tool_calls(message, where) if role == "assistant" else []
        if not calls and isinstance(content, str):
            out.append(message if type(message) is dict and len(message) == 2 else
                       {"role": role, "content": content})
            continue
        blocks = _blocks(content, f"{where}.content") + calls
        if not blocks:
            raise InvalidRequestError(f"{where}.content must not be empty")
        out.append({"role": role, "content": blocks})
    return out


def output_pieces(deltas: Iterable[Delta]) -> Iterator[str]:
    """The output in ``deltas`` beyond text — tool names and arguments, thinking — as text to count
    when a stream breaks before the provider's usage (text is counted from ``StreamChunk.text``)."""
    return (d.name + d.text for d in deltas if d.kind not in _NOT_OUTPUT)


_NOT_OUTPUT = frozenset({"text", "meta", "logprobs"})


def tool_calls_of(content: Sequence[Block] | None) -> list[Block]:
    """The ``tool_call`` blocks of an answer's content, in order."""
    return [b for b in content or () if b.get("type") == "tool_call"]
