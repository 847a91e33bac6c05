"""A content-filter refusal through the gateway: the client's 400, and the route's breaker stays closed."""

from __future__ import annotations

import httpx2
from gateway_support import ACME_KEY, SIM_ENV, make_app, serve

from greenlang_llm.simulator import Simulator, SimulatorConfig
from greenlang_llm.simulator.faults import FaultRule

THRESHOLD = 3


async def test_the_gateway_answers_a_refusal_as_the_clients_error_and_keeps_the_breaker_closed() -> None:
    async with Simulator(SimulatorConfig(seed=1)) as s:
        data = {
            "server": {"database_url": "sqlite:///:memory:", "circuit_breaker_threshold": THRESHOLD},
            "providers": [{"name": "gpt", "type": "openai", "model_id": "first",
                           "base_url": s.openai_base_url, "api_key_env": "SIM_KEY", "max_retries": 2}],
            "routes": [{"name": "r", "providers": ["gpt"]}],
            "keys": [{"key_env": "ACME_KEY", "tenant": "acme", "agent": "refusals"}],
            "budgets": [],
        }
        app, service = make_app(data, providers={}, env=SIM_ENV)
        s.faults.add(FaultRule("content_policy", model="first"))
        async with serve(app) as url, httpx2.AsyncClient(base_url=url) as client:
            for _ in range(2 * THRESHOLD):
                resp = await client.post(
                    "/v1/chat/completions", headers={"authorization": f"Bearer {ACME_KEY}"},
                    json={"model": "r", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
                assert resp.status_code == 400
            text = (await client.get("/metrics")).text
        assert ("r", "gpt", "closed") in service.breaker_states()
        assert s.stats.by_model["first"] == 2 * THRESHOLD
        counted = [line for line in text.splitlines() if line.startswith("greenlang_gateway_errors_total")]
        # the client's error, not an upstream outage (upstream_error / overloaded / circuit_open)
        label = 'greenlang_gateway_errors_total{api="openai",type="invalid_request"}'
        assert counted == [f"{label} {2 * THRESHOLD}"]
