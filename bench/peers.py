"""The peers we compare against live in their own virtual environment, never in ours.

LiteLLM pulls in a large dependency tree (FastAPI, its own pinned aiohttp, openai, …).
Installing it next to greenlang-llm would change the very packages we benchmark, so it
goes into ``bench/.venv-peers`` (gitignored) and its scripts (``bench/litellm_*.py``) run
with that environment's interpreter. The pin is the newest ``litellm[proxy]`` that
resolves here; 1.82.7 and 1.82.8 were compromised releases and are refused outright.

    python -m bench.peers install      # idempotent
    python -m bench.peers versions
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

__all__ = ["LITELLM_SPEC", "PEER_VENV", "ensure_peers", "peer_python", "peer_versions"]

BENCH_DIR = Path(__file__).resolve().parent
PEER_VENV = BENCH_DIR / ".venv-peers"
LITELLM_SPEC = "litellm[proxy]==1.108.7"
COMPROMISED = ("1.82.7", "1.82.8")
_MARKER = ".bench-peers.json"
_REPORTED = ("litellm", "fastapi", "uvicorn", "starlette", "aiohttp", "httpx", "openai", "uvloop", "orjson")


def peer_python(venv: Path = PEER_VENV) -> Path:
    return venv / "bin" / "python"


def _installed(venv: Path) -> bool:
    marker = venv / _MARKER
    if not (peer_python(venv).exists() and marker.exists()):
        return False
    try:
        return bool(json.loads(marker.read_text()).get("spec") == LITELLM_SPEC)
    except (OSError, ValueError):
        return False


def ensure_peers(venv: Path = PEER_VENV, *, install: bool = True, quiet: bool = True) -> Path | None:
    """Return the peer interpreter, installing LiteLLM first if allowed; None when unavailable."""
    if any(bad in LITELLM_SPEC for bad in COMPROMISED):
        raise RuntimeError(f"refusing to install a compromised LiteLLM release: {LITELLM_SPEC}")
    if _installed(venv):
        return peer_python(venv)
    if not install:
        return None
    if not peer_python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(peer_python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("-q")
    subprocess.run([*pip, LITELLM_SPEC], check=True)
    versions = peer_versions(venv)
    if versions.get("litellm") in COMPROMISED:
        raise RuntimeError(f"a compromised LiteLLM release was installed: {versions['litellm']}")
    (venv / _MARKER).write_text(json.dumps({"spec": LITELLM_SPEC, "versions": versions}))
    return peer_python(venv)


def peer_versions(venv: Path = PEER_VENV) -> dict[str, str]:
    """Versions of the packages that matter to the comparison, read inside the peer venv."""
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        f"for name in {list(_REPORTED)!r}:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "import platform; out['python'] = platform.python_version()\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([str(peer_python(venv)), "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def _main(argv: list[str]) -> int:
    command = argv[0] if argv else "install"
    if command == "install":
        python = ensure_peers(quiet=False)
        print(python)
        return 0
    if command == "versions":
        print(json.dumps(peer_versions(), indent=2))
        return 0
    print("usage: python -m bench.peers install|versions", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
