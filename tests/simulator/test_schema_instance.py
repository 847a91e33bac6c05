"""The minimal instance of a JSON Schema (tool arguments, structured outputs), rule by rule."""

from __future__ import annotations

from typing import Any

import pytest

from greenlang_llm.simulator.replies import VOCAB
from greenlang_llm.simulator.schema_instance import minimal_instance

D = bytes(range(7, 39))  # byte k is 7 + k


def instance(schema: Any) -> Any:
    return minimal_instance(schema, D, VOCAB)


def test_an_object_holds_its_required_properties_in_properties_order() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}, "c": {"type": "boolean"}},
        "required": ["c", "a", "extra"],
    }
    # a takes byte 0; then extra (required, undescribed) is a string from byte 1
    assert instance(schema) == {"a": VOCAB[7], "c": True, "extra": VOCAB[8]}


def test_without_required_every_property_is_there() -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string"}, "n": {"type": "number"}}}
    assert instance(schema) == {"s": VOCAB[7], "n": float(8 % 10)}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string", "enum": ["x", "y"]}, "x"),
        ({"const": 42}, 42),
        ({"type": "boolean"}, True),
        ({"type": "null"}, None),
        ({"type": ["null", "integer"]}, 7),
        ({"type": "integer", "minimum": 10, "maximum": 12}, 12),
        ({"type": "integer", "exclusiveMinimum": 0}, 8),
        ({"type": "integer", "maximum": 3}, 3),
        ({"type": "number", "minimum": 0.5}, 8.0),
        ({"type": "array", "items": {"type": "string"}}, []),
        ({"type": "array", "items": {"type": "string"}, "minItems": 2}, [VOCAB[7], VOCAB[8]]),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, 7),
        ({"oneOf": [{"type": "boolean"}]}, True),
        ({"$ref": "#/$defs/x"}, {}),
        ({"properties": {"k": {"type": "boolean"}}}, {"k": True}),
        ({}, VOCAB[7]),
        ({"type": "string", "format": "date-time"}, "2025-01-01T00:00:00Z"),
        ({"type": "string", "format": "email"}, f"{VOCAB[7]}@example.com"),
        ({"type": "string", "minLength": 12}, (VOCAB[7] * 12)[:12]),
        ({"type": "string", "maxLength": 2}, VOCAB[7][:2]),
    ],
)
def test_each_rule(schema: dict[str, Any], expected: Any) -> None:
    assert instance(schema) == expected


def test_depth_is_bounded() -> None:
    schema: dict[str, Any] = {"type": "boolean"}
    for _ in range(40):
        schema = {"type": "object", "properties": {"x": schema}}
    value = instance(schema)
    for _ in range(32):
        value = value["x"]
    assert value == {"x": None}
