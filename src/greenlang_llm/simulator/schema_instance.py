"""A minimal, deterministic instance of a JSON Schema: the simulator's tool arguments and
structured outputs.

``minimal_instance(schema, digest)`` walks the schema once, depth first, in the order its
``properties`` are written. Every string or number it has to invent takes the next byte of
``digest`` (a cursor starting at byte 0, wrapping after 32), so the same schema and digest
always give the same value. The rules, in the order they are tried:

- ``const`` → that value; ``enum`` → its first value;
- ``anyOf`` / ``oneOf`` / ``allOf`` → the instance of the first branch;
- ``$ref`` → ``{}`` (references are not followed);
- ``type`` a list → the first type that is not ``"null"`` (``null`` if there is none);
  no ``type``: ``object`` if the schema has ``properties``, ``array`` if it has ``items``,
  else ``string``;
- ``object`` → its required properties (all of them when there is no ``required``), in
  ``properties`` order, then required names ``properties`` does not describe (as strings);
- ``string`` → by ``format``: ``date`` ``2025-01-01``, ``date-time``
  ``2025-01-01T00:00:00Z``, ``time`` ``00:00:00``, ``email`` ``<word>@example.com``,
  ``uri``/``url`` ``https://example.com/<word>``, ``uuid``
  ``00000000-0000-4000-8000-000000000000``; otherwise ``<word>`` =
  ``VOCAB[byte % 64]``, repeated up to ``minLength`` and cut to ``maxLength``;
- ``integer`` → ``byte % 10``, plus ``minimum`` (or ``exclusiveMinimum + 1``) when set, then
  at most ``maximum`` (or ``exclusiveMaximum - 1``); ``number`` → the same as a float;
- ``boolean`` → ``true``; ``null`` → ``null``;
- ``array`` → ``minItems`` instances of ``items`` (``[]`` when ``minItems`` is 0 or absent);
- anything nested deeper than 32 levels → ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["minimal_instance"]

_MAX_DEPTH = 32
_FORMATS = {
    "date": "2025-01-01",
    "date-time": "2025-01-01T00:00:00Z",
    "time": "00:00:00",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def minimal_instance(schema: Any, digest: bytes, vocab: tuple[str, ...]) -> Any:
    """The documented minimal instance of ``schema``; ``vocab`` has 64 words."""
    return _Walker(digest, vocab).value(schema, 0)


class _Walker:
    __slots__ = ("cursor", "digest", "vocab")

    def __init__(self, digest: bytes, vocab: tuple[str, ...]) -> None:
        self.digest, self.vocab, self.cursor = digest, vocab, 0

    def _byte(self) -> int:
        byte = self.digest[self.cursor % len(self.digest)] if self.digest else 0
        self.cursor += 1
        return byte

    def value(self, schema: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH or not isinstance(schema, Mapping):
            return None
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[0]
        for key in ("anyOf", "oneOf", "allOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self.value(branches[0], depth + 1)
        if "$ref" in schema:
            return {}
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        if kind == "object":
            return self._object(schema, depth)
        if kind == "string":
            return self._string(schema)
        if kind in ("integer", "number"):
            number = self._integer(schema)
            return number if kind == "integer" else float(number)
        if kind == "boolean":
            return True
        if kind == "array":
            count = schema.get("minItems")
            count = count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0
            return [self.value(schema.get("items", {}), depth + 1) for _ in range(count)]
        return None

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        names = list(properties) if not isinstance(required, list) else [
            *(p for p in properties if p in required),
            *(r for r in required if isinstance(r, str) and r not in properties),
        ]
        return {name: self.value(properties.get(name, {"type": "string"}), depth + 1) for name in names}

    def _string(self, schema: Mapping[str, Any]) -> str:
        fmt = schema.get("format")
        if fmt in _FORMATS:
            return _FORMATS[fmt]
        word = self.vocab[self._byte() % 64]
        if fmt == "email":
            return f"{word}@example.com"
        if fmt in ("uri", "url"):
            return f"https://example.com/{word}"
        low, high = schema.get("minLength"), schema.get("maxLength")
        if isinstance(low, int) and low > len(word):
            word = (word * (low // len(word) + 1))[:low]
        if isinstance(high, int) and high >= 0:
            word = word[:high]
        return word

    def _integer(self, schema: Mapping[str, Any]) -> int:
        value = self._byte() % 10
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is None and isinstance(schema.get("exclusiveMinimum"), int | float):
            low = schema["exclusiveMinimum"] + 1
        if high is None and isinstance(schema.get("exclusiveMaximum"), int | float):
            high = schema["exclusiveMaximum"] - 1
        if isinstance(low, int | float) and not isinstance(low, bool):
            value += int(-(-low // 1))  # ceil, so the value stays >= minimum
        if isinstance(high, int | float) and not isinstance(high, bool):
            value = min(value, int(high // 1))
        return value
