"""The gateway's OpenAPI 3.1 description, written by hand and served at ``/openapi.json``.

Hand-written because the endpoints take the two vendors' request bodies, which
we validate in ``wire/`` rather than with a schema library; the description
covers the fields we interpret (others are accepted and ignored). The test
suite runs schemathesis against it, so it must stay truthful: every status an
operation can answer is listed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OPENAPI_SPEC"]

_TEXT_CONTENT: dict[str, Any] = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string"}, "text": {"type": "string"}},
            },
        },
    ]
}

_OPENAI_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "integer", "null"]},
            },
        }
    },
}

_ANTHROPIC_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}


def _errors(schema: dict[str, Any], statuses: tuple[int, ...]) -> dict[str, Any]:
    return {
        str(s): {"description": f"error {s}", "content": {"application/json": {"schema": schema}}}
        for s in statuses
    }


_COMPLETION_ERRORS = (400, 401, 403, 404, 413, 429, 502, 503, 504)
_ADMIN_ERRORS = (400, 401, 403)

_CHAT_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {
                    "role": {"enum": ["system", "developer", "user", "assistant"]},
                    "content": _TEXT_CONTENT,
                },
            },
        },
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "max_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "stop": {
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]
        },
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
    },
}

_MESSAGES_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages", "max_tokens"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "max_tokens": {"type": "integer", "minimum": 1},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {"role": {"enum": ["user", "assistant"]}, "content": _TEXT_CONTENT},
            },
        },
        "system": _TEXT_CONTENT,
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "stop_sequences": {"type": "array", "items": {"type": "string"}},
        "stream": {"type": "boolean"},
    },
}

_OBJ: dict[str, Any] = {"type": "object"}


def _json_ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or _OBJ}}}


def _completion(summary: str, request: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": [{"bearer": []}, {"apiKey": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {
            "200": {
                "description": "the reply (JSON), or an event stream when stream is true",
                "content": {"application/json": {"schema": _OBJ}, "text/event-stream": {"schema": {}}},
            },
            **_errors(error, _COMPLETION_ERRORS),
        },
    }


def _admin(summary: str, params: list[dict[str, Any]], admin_only: bool = True) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": [{"bearer": []}, {"apiKey": []}],
        "parameters": params,
        "responses": {
            "200": {
                "description": "ok",
                "content": {"application/json": {"schema": _OBJ}, "text/csv": {"schema": {"type": "string"}}},
            },
            **_errors(_OPENAI_ERROR, _ADMIN_ERRORS + ((404,) if admin_only else ())),
        },
    }


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


_RANGE = [_query("start", {"type": "string"}), _query("end", {"type": "string"})]

OPENAPI_SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "greenlang-llm gateway",
        "version": "0.1.0",
        "description": "OpenAI- and Anthropic-compatible LLM gateway: failover, budgets, a cost ledger.",
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        }
    },
    "paths": {
        "/v1/chat/completions": {
            "post": _completion("OpenAI Chat Completions", _CHAT_REQUEST, _OPENAI_ERROR)
        },
        "/v1/messages": {"post": _completion("Anthropic Messages", _MESSAGES_REQUEST, _ANTHROPIC_ERROR)},
        "/v1/models": {
            "get": {
                "summary": "Models (routes) this key may use",
                "security": [{"bearer": []}, {"apiKey": []}],
                "responses": {"200": _json_ok("model list"), **_errors(_OPENAI_ERROR, (401,))},
            }
        },
        "/v1/usage": {"get": _admin("The caller's own tenant's costs", _RANGE, admin_only=False)},
        "/health": {"get": {"summary": "Liveness", "responses": {"200": _json_ok("alive")}}},
        "/health/ready": {
            "get": {
                "summary": "Readiness: every route has a healthy provider",
                "responses": {"200": _json_ok("ready"), "503": _json_ok("not ready")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                },
            }
        },
        "/admin/costs/summary": {
            "get": _admin(
                "Cost summary (CostSummary fields)", [*_RANGE, _query("tenant", {"type": "string"})]
            )
        },
        "/admin/costs/timeseries": {
            "get": _admin(
                "Cost time series",
                [
                    *_RANGE,
                    _query("tenant", {"type": "string"}),
                    _query("granularity", {"enum": ["hourly", "daily", "monthly"]}),
                    _query("format", {"enum": ["json", "csv"]}),
                ],
            )
        },
        "/admin/budgets/{tenant}": {
            "get": _admin(
                "Budget status of one tenant",
                [
                    {
                        "name": "tenant",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                    },
                ],
            )
        },
        "/admin/providers": {"get": _admin("Breaker state and counters per route and provider", [])},
    },
}
