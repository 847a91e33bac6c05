"""Typed config files: msgspec checks a parsed TOML document, this module words the error.

The gateway's and the simulator's config files are described by msgspec Structs:
the annotations say each key's type and range, ``forbid_unknown_fields`` refuses
typos such as ``modle_id``, and the JSON Schema editors use is generated from the
same classes. :func:`convert` runs ``msgspec.convert`` (in C, strict: no string is
taken for a number) and, when it fails, turns msgspec's
``Expected `int` >= 1 - at `$.keys[0].rpm``` into the line a user fixing the file
needs: ``keys[0].rpm: must be at least 1, got 0`` — the key's path as it appears in
the file, what is allowed, what was found. The wording is derived from the field's
declared type at that path (looked up with ``msgspec.inspect``) and the value in
the document, so no table needs a hand-written validator and every table is worded
alike.

A field can refine its message through ``Meta(extra=...)``: ``"required"`` is the
text when the key is missing (or, for a list, empty), ``"invalid"`` the text for any
other bad value (``{value}`` is replaced by what was found). msgspec is imported
only by the config modules, never by ``import greenlang_llm``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

__all__ = ["ConfigError", "convert", "json_schema", "json_schema_text"]

T = TypeVar("T")

_MISSING: Any = object()
_ERROR = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_STEP = re.compile(r"\.(\w+)|\[(\d+|\.\.\.)\]")
_FIELD = re.compile(r"^Object (missing required|contains unknown) field `(?P<name>[^`]+)`")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ARRAYS = (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)
_TABLES = (mi.StructType, mi.DataclassType, mi.DictType)


class ConfigError(ValueError):
    """A bad configuration; the message names the key (one line, no secret)."""


def convert(data: Mapping[str, Any], cls: type[T]) -> T:
    """``data`` (a parsed TOML document) as ``cls``, or a one-line :class:`ConfigError`."""
    document = dict(data)
    _refuse_non_finite(document, cls)
    try:
        return msgspec.convert(document, cls)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe(str(exc), document, cls)) from None


def json_schema(cls: type[Any], title: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a config file whose document is ``cls``."""
    schema = msgspec.json.schema(cls)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, **schema}


def json_schema_text(cls: type[Any], title: str) -> str:
    """:func:`json_schema` as the text that is printed and committed (stable key order, newline)."""
    return json.dumps(json_schema(cls, title), indent=2, ensure_ascii=False) + "\n"


# --- wording msgspec's error ---------------------------------------------------------------------


class _Spot:
    """Where a walk along an error path stands: the file's path, the declared type, the value."""

    __slots__ = ("extra", "node", "path", "value")

    def __init__(self, path: str, node: mi.Type, value: Any) -> None:
        self.path = path
        self.value = value
        self.extra: dict[str, Any] = {}
        self.node = self._unwrap(node)

    def _unwrap(self, node: mi.Type) -> mi.Type:
        """Drop ``Meta`` wrappers (keeping their ``extra``) and ``| None`` (TOML has no null)."""
        while True:
            if isinstance(node, mi.Metadata):
                self.extra.update(node.extra or {})
                node = node.type
            elif isinstance(node, mi.UnionType):
                kinds = [t for t in node.types if not isinstance(t, mi.NoneType)]
                if len(kinds) != 1:
                    return node
                node = kinds[0]
            else:
                return node

    def child(self, step: str) -> _Spot:
        """One step further: a table's key, an array's ``[i]``, a map's key (msgspec: ``[...]``)."""
        node, value = self.node, self.value
        if isinstance(node, mi.DictType):
            key = _failing_key(value, node.value_type) if step == "[...]" else step
            return _Spot(f"{self.path}.{_toml_key(key)}", node.value_type, _get(value, key))
        if step.startswith("["):
            item = node.item_type if isinstance(node, _ARRAYS) else mi.AnyType()
            return _Spot(f"{self.path}{step}", item, _get(value, int(step[1:-1])))
        field = _field(node, step)
        path = f"{self.path}.{_toml_key(step)}" if self.path else _toml_key(step)
        return _Spot(path, field.type if field is not None else mi.AnyType(), _get(value, step))


def _walk(cls: type[Any], document: dict[str, Any], steps: list[str]) -> list[_Spot]:
    """The spots from the document's root along ``steps``."""
    trail = [_Spot("", mi.type_info(cls), document)]
    for step in steps:
        trail.append(trail[-1].child(step))
    return trail


def _blamed(trail: list[_Spot]) -> _Spot:
    """A bad item in a list of strings or numbers is the list's fault: "must be a list of ..."."""
    while len(trail) > 1 and trail[-1].path.endswith("]") and not isinstance(trail[-1].node, _TABLES):
        trail = trail[:-1]
    return trail[-1]


def _describe(error: str, document: dict[str, Any], cls: type[Any]) -> str:
    match = _ERROR.match(error)
    assert match is not None  # the pattern matches any text
    message = match["message"]
    steps = [name or f"[{index}]" for name, index in _STEP.findall(match["path"] or "")]
    named = _FIELD.match(message)
    if named is not None:
        spot = _walk(cls, document, [*steps, named["name"]])[-1]
        if named[1] == "contains unknown":
            return f"{spot.path}: unknown key"
        return f"{spot.path}: {spot.extra.get('required', 'required')}"
    spot = _blamed(_walk(cls, document, steps))
    return f"{spot.path or 'config'}: {_expected(spot, message)}"


def _expected(spot: _Spot, message: str) -> str:
    """What the key accepts, worded from its declared type (and what it got)."""
    node, value, extra = spot.node, spot.value, spot.extra
    if "invalid" in extra:
        return str(extra["invalid"]).format(value=value)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(node, mi.StrType):
        return "must be a non-empty string"
    if isinstance(node, mi.BoolType):
        return "must be true or false"
    if isinstance(node, mi.LiteralType):
        choices = [str(v) for v in node.values]
        if len(choices) == 2:
            return f"must be {choices[0]!r} or {choices[1]!r}, got {value!r}"
        return f"must be one of {', '.join(choices)}; got {value!r}"
    if isinstance(node, mi.IntType):
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be an integer"
        low = f"at least {node.ge}" if node.ge is not None else ""
        high = f"at most {node.le}" if node.le is not None else ""
        return f"must be {' and '.join(p for p in (low, high) if p)}, got {value}"
    if isinstance(node, mi.FloatType):
        if not number:
            return "must be a number"
        bound = f" > {node.gt}" if node.gt is not None else f" >= {node.ge}" if node.ge is not None else ""
        finite = "finite " if node.gt is not None or not math.isfinite(value) else ""
        return f"must be a {finite}number{bound}, got {value}"
    if isinstance(node, _ARRAYS):
        if isinstance(value, list) and not value and "required" in extra:
            return str(extra["required"])
        item = _Spot("", node.item_type, None).node
        if isinstance(item, _TABLES):
            return f"must be an array of tables ([[{spot.path.rsplit('.', 1)[-1]}]])"
        if isinstance(item, mi.StrType):
            return "must be a list of non-empty strings"
        return "must be a list"
    if isinstance(node, _TABLES):
        # a table that fails as a whole was refused by its own check (``__post_init__``): say why
        return message if isinstance(value, dict) else "must be a table"
    return message[:1].lower() + message[1:]  # a type this module does not word (kept: one line)


def _refuse_non_finite(document: dict[str, Any], cls: type[Any]) -> None:
    """TOML allows ``inf`` and ``nan``; no key of a config means them (a bound msgspec would pass)."""
    stack: list[tuple[Any, list[str]]] = [(document, [])]
    while stack:
        value, steps = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            trail = _walk(cls, document, steps)
            if any(isinstance(spot.node, mi.AnyType) for spot in trail):
                continue  # under a key the config does not declare: msgspec says "unknown key"
            spot = _blamed(trail)
            raise ConfigError(f"{spot.path}: {_expected(spot, 'not a finite number')}")
        if isinstance(value, dict):
            stack.extend((v, [*steps, str(k)]) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((v, [*steps, f"[{i}]"]) for i, v in reversed(list(enumerate(value))))


def _field(node: mi.Type, name: str) -> mi.Field | None:
    if isinstance(node, mi.StructType | mi.DataclassType):
        return next((f for f in node.fields if f.encode_name == name), None)
    return None


def _get(value: Any, key: str | int) -> Any:
    try:
        return value[key]
    except (KeyError, IndexError, TypeError):
        return _MISSING


def _failing_key(table: Any, value_type: mi.Type) -> str:
    """msgspec says ``[...]`` for a map's entry; the first entry that fails is the one it meant."""
    if not isinstance(table, dict):
        return "..."
    cls = _Spot("", value_type, None).node
    target = cls.cls if isinstance(cls, mi.StructType | mi.DataclassType) else None
    for key, value in table.items():
        if target is None:
            return str(key)
        try:
            msgspec.convert(value, target)
        except (msgspec.ValidationError, ValueError):
            return str(key)
    return "..."


def _toml_key(key: str) -> str:
    """A key as written in TOML: bare when it can be, else quoted (``models."gpt-4o.mini"``)."""
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)
