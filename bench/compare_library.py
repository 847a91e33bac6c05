"""Our side of the library comparison — runs in the project's venv, in its own process.

``LLMRouter`` with two providers (OpenAI-style primary, Anthropic-style fallback, the
default failover and circuit breakers on) pointed at the simulator, and a direct
``OpenAIProvider.generate`` call, next to a raw aiohttp POST to the same simulator (the
baseline that "added overhead" is measured from). Same workload, same ``measure_calls``,
same event loop (uvloop) as ``litellm_library.py``. Prints one JSON document on stdout.

    python bench/compare_library.py --sim http://127.0.0.1:8001 --n 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

import aiohttp

from loadgen import assert_loopback, measure_calls, raw_post

PROMPT = "Say hello."
MAX_TOKENS = 16
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"


async def run(sim: str, n: int, concurrency: int, repeats: int, warmup: int) -> dict[str, Any]:
    from greenlang_llm import LLMRouter
    from greenlang_llm.providers import AnthropicProvider, OpenAIProvider
    from greenlang_llm.providers.base_provider import GenerationRequest

    primary = OpenAIProvider(OPENAI_MODEL, api_key="sk-bench-fake-openai", base_url=f"{sim}/v1")
    fallback = AnthropicProvider(ANTHROPIC_MODEL, api_key="sk-ant-bench-fake", base_url=sim)
    direct = OpenAIProvider(OPENAI_MODEL, api_key="sk-bench-fake-openai", base_url=f"{sim}/v1")
    router = LLMRouter()
    router.register_provider("openai", primary, priority=1)
    router.register_provider("anthropic", fallback, priority=2)
    request = GenerationRequest(prompt=PROMPT, max_tokens=MAX_TOKENS)
    body = json.dumps(
        {"model": OPENAI_MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": MAX_TOKENS}
    ).encode()
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench-fake-openai"}
    connector = aiohttp.TCPConnector(limit=100)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            raw = raw_post(session, f"{sim}/v1/chat/completions", body, headers)

            async def via_router() -> object:
                reply = await router.generate(request)
                if not reply.text:
                    raise RuntimeError("empty reply")
                return reply

            async def via_provider() -> object:
                reply = await direct.generate(request)
                if not reply.text:
                    raise RuntimeError("empty reply")
                return reply

            fallback_ok = bool((await fallback.generate(request)).text)
            for call in (raw, via_provider, via_router):
                await measure_calls("warmup", call, warmup, 1)
            out: list[dict[str, Any]] = []
            for _ in range(repeats):
                rep: dict[str, Any] = {}
                for mode, conc in (("sequential", 1), ("concurrent", concurrency)):
                    rep[mode] = {
                        "raw": (await measure_calls("raw", raw, n, conc)).as_dict(),
                        "provider": (await measure_calls("provider", via_provider, n, conc)).as_dict(),
                        "llm_router": (await measure_calls("llm_router", via_router, n, conc)).as_dict(),
                    }
                out.append(rep)
    finally:
        closer = getattr(router, "close", None)  # in the contract; tolerate a router still in progress
        if closer is not None:
            await closer()
        for provider in (primary, fallback, direct):
            await provider.close()
    return {"side": "greenlang_llm", "fallback_ok": fallback_ok, "repeats": out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", required=True, help="simulator base URL (loopback)")
    parser.add_argument("--n", type=int, default=500, help="calls per measurement")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    sim = args.sim.rstrip("/")
    assert_loopback(sim)
    os.environ.setdefault("GREENLANG_LLM_LOOPBACK_ONLY", "1")
    import uvloop

    result = uvloop.run(run(sim, args.n, args.concurrency, args.repeats, args.warmup))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    raise SystemExit(main())
