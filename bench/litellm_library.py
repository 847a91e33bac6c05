"""LiteLLM side of the library comparison — runs INSIDE the peer venv (bench/.venv-peers).

``litellm.Router`` with two deployments (OpenAI-style primary, Anthropic-style fallback,
``fallbacks`` configured) pointed at the simulator, timed with the same ``measure_calls``
as our side, next to a raw aiohttp POST to the same simulator in the same process (the
baseline that "added overhead" is measured from). Prints one JSON document on stdout.

    bench/.venv-peers/bin/python bench/litellm_library.py --sim http://127.0.0.1:8001 --n 500
"""

from __future__ import annotations

import os

# before litellm is imported: offline cost map, no telemetry, quiet
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")
os.environ.setdefault("LITELLM_LOG", "ERROR")

import argparse
import json
import sys
from importlib.metadata import version as _version
from typing import Any

import aiohttp

from loadgen import assert_loopback, measure_calls, raw_post

MESSAGES = [{"role": "user", "content": "Say hello."}]
MAX_TOKENS = 16
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"


def build_router(sim: str) -> Any:
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    model_list = [
        {
            "model_name": "bench-primary",
            "litellm_params": {
                "model": f"openai/{OPENAI_MODEL}",
                "api_base": f"{sim}/v1",
                "api_key": "sk-bench-fake-openai",
            },
        },
        {
            "model_name": "bench-fallback",
            "litellm_params": {
                "model": f"anthropic/{ANTHROPIC_MODEL}",
                "api_base": sim,
                "api_key": "sk-ant-bench-fake",
            },
        },
    ]
    return litellm.Router(
        model_list=model_list, fallbacks=[{"bench-primary": ["bench-fallback"]}], num_retries=3
    )


async def run(sim: str, n: int, concurrency: int, repeats: int, warmup: int) -> dict[str, Any]:

    router = build_router(sim)
    body = json.dumps({"model": OPENAI_MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS}).encode()
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench-fake-openai"}
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        raw = raw_post(session, f"{sim}/v1/chat/completions", body, headers)

        async def via_router() -> object:
            reply = await router.acompletion(model="bench-primary", messages=MESSAGES, max_tokens=MAX_TOKENS)
            if not reply.choices[0].message.content:
                raise RuntimeError("empty reply")
            return reply

        # check the fallback deployment answers too (the failover path is real, not decoration)
        fallback = await router.acompletion(model="bench-fallback", messages=MESSAGES, max_tokens=MAX_TOKENS)
        await measure_calls("warmup", raw, warmup, 1)
        await measure_calls("warmup", via_router, warmup, 1)
        out: list[dict[str, Any]] = []
        for _ in range(repeats):
            rep: dict[str, Any] = {}
            for mode, conc in (("sequential", 1), ("concurrent", concurrency)):
                rep[mode] = {
                    "raw": (await measure_calls("raw", raw, n, conc)).as_dict(),
                    "litellm_router": (await measure_calls("litellm_router", via_router, n, conc)).as_dict(),
                }
            out.append(rep)
    return {
        "side": "litellm",
        "litellm_version": _version("litellm"),
        "fallback_ok": bool(fallback.choices[0].message.content),
        "repeats": out,
    }


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
    import uvloop

    result = uvloop.run(run(sim, args.n, args.concurrency, args.repeats, args.warmup))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
