"""Schemathesis against the ASGI app: no generated input (valid or not) ever gets a 5xx.

The providers are FakeProviders, so every 5xx would be the gateway's own fault.
Bounded: a few dozen examples per operation, derandomized so runs repeat.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from gateway_support import ACME_KEY, ADMIN_KEY, make_app
from hypothesis import HealthCheck, settings

APP, SERVICE = make_app()


async def _without_lifespan(scope: Any, receive: Any, send: Any) -> None:
    """The app, minus lifespan: schemathesis's client runs it per call, and shutdown closes the ledger."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await APP(scope, receive, send)


SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", _without_lifespan)


@SCHEMA.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_error_on_any_generated_input(case: Any) -> None:
    key = ADMIN_KEY if case.path.startswith("/admin") else ACME_KEY
    response = case.call(headers={"authorization": f"Bearer {key}"})
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
    if response.status_code >= 400:
        content_type = response.headers["content-type"]
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/json")
