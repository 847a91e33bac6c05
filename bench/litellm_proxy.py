"""Start LiteLLM's proxy against the simulator — runs INSIDE the peer venv (bench/.venv-peers).

Writes a ``config.yaml`` with the same two deployments as our gateway's route (an
OpenAI-style primary and an Anthropic-style fallback, ``fallbacks`` configured), then
replaces itself with ``litellm --config … --host 127.0.0.1 --port P --num_workers 1``.
Everything that could reach the network is off: the cost map is the bundled local copy,
telemetry is off, no callbacks, no database; outbound HTTP(S) proxies point at a dead
loopback port so a forgotten fetch fails here instead of leaving the machine.

    bench/.venv-peers/bin/python bench/litellm_proxy.py --sim http://127.0.0.1:8001 --port 4100 --dir /tmp/x
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

MASTER_KEY = "sk-bench-master"
ROUTE = "bench"
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"

OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "LITELLM_MASTER_KEY": MASTER_KEY,
    "DISABLE_ADMIN_UI": "True",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
    "NO_DOCS": "True",
    "NO_REDOC": "True",
    "DISABLE_SCHEMA_UPDATE": "True",
    "HF_HUB_OFFLINE": "1",
    "NO_PROXY": "127.0.0.1,localhost,::1",
    "no_proxy": "127.0.0.1,localhost,::1",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
}


def config_yaml(sim: str) -> str:
    """The proxy config (JSON is valid YAML, so no YAML writer is needed)."""
    config = {
        "model_list": [
            {
                "model_name": ROUTE,
                "litellm_params": {
                    "model": f"openai/{OPENAI_MODEL}",
                    "api_base": f"{sim}/v1",
                    "api_key": "sk-bench-fake-openai",
                },
            },
            {
                "model_name": f"{ROUTE}-fallback",
                "litellm_params": {
                    "model": f"anthropic/{ANTHROPIC_MODEL}",
                    "api_base": sim,
                    "api_key": "sk-ant-bench-fake",
                },
            },
        ],
        "router_settings": {"fallbacks": [{ROUTE: [f"{ROUTE}-fallback"]}], "num_retries": 3},
        "litellm_settings": {
            "telemetry": False,
            "set_verbose": False,
            "callbacks": [],
            "success_callback": [],
        },
        "general_settings": {"master_key": MASTER_KEY},
    }
    return json.dumps(config, indent=2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True, help="where config.yaml is written")
    args = parser.parse_args()
    host = args.sim.split("//", 1)[-1].split(":", 1)[0].split("/", 1)[0]
    if host not in ("127.0.0.1", "localhost"):
        print(f"refusing a non-loopback simulator: {args.sim}", file=sys.stderr)
        return 2
    workdir = Path(args.dir)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "litellm-config.yaml"
    config.write_text(config_yaml(args.sim.rstrip("/")))
    os.environ.update(OFFLINE_ENV)
    exe = shutil.which("litellm", path=str(Path(sys.executable).parent)) or "litellm"
    argv = [
        exe,
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(args.port),
        "--num_workers",
        "1",
    ]
    os.chdir(workdir)
    os.execv(exe, argv)
    return 1  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
