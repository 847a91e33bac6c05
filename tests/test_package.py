"""The public surface: every exported name imports and is documented; the root import stays light."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import greenlang_llm

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("aiohttp", "genai_prices", "psycopg", "redis", "starlette", "tiktoken")

# Exported names whose owners had not documented them yet when this test was written:
# they xfail while undocumented and pass once documented (then delete them from here).
PENDING_DOCS: frozenset[str] = frozenset()


def _docs_text() -> str:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in pages if p.exists())


def _own_docstring(obj: object, name: str) -> str | None:
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    if not doc or doc.startswith(f"{name}("):  # dataclasses invent "Name(field, ...)" docs
        return None
    return str(doc)


@pytest.mark.parametrize("name", sorted(greenlang_llm.__all__))
def test_every_public_name_imports(name: str) -> None:
    assert getattr(greenlang_llm, name) is not None
    assert name in dir(greenlang_llm)


@pytest.mark.parametrize("name", sorted(set(greenlang_llm.__all__) - {"__version__"}))
def test_every_public_name_is_documented(name: str) -> None:
    obj = getattr(greenlang_llm, name)
    documented = _own_docstring(obj, name) is not None or re.search(rf"`{re.escape(name)}\b", _docs_text())
    if name in PENDING_DOCS and not documented:
        pytest.xfail(f"{name} has no docstring yet (owned by another module)")
    assert documented, f"{name} needs a docstring or a mention in docs/"


def test_version_is_a_string() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", greenlang_llm.__version__)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        greenlang_llm.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("greenlang_llm.providers", ["AnthropicProvider", "OpenAIProvider", "BaseLLMProvider"]),
        (
            "greenlang_llm.providers.base_provider",
            ["GenerationRequest", "GenerationResponse", "TokenUsage", "ProviderHealth", "ProviderError",
             "RateLimitError", "AuthenticationError", "InvalidRequestError", "ServiceUnavailableError"],
        ),
        ("greenlang_llm.circuit_breaker", ["CircuitBreaker", "CircuitBreakerOpenError", "CircuitState"]),
        ("greenlang_llm.cost_tracker", ["CostTracker", "BudgetStatus", "CostSummary"]),
        ("greenlang_llm.llm_router", ["LLMRouter", "RoutingStrategy", "AllCircuitsOpenError",
                                      "AllProvidersRateLimitedError"]),
        ("greenlang_llm.rate_limiter", ["RateLimiter"]),
    ],
)
def test_seed_import_paths_work(module: str, names: list[str]) -> None:
    loaded = importlib.import_module(module)
    for name in names:
        assert inspect.isclass(getattr(loaded, name)), f"{module}.{name}"


def test_importing_the_package_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, greenlang_llm\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_py_typed_marker_ships() -> None:
    assert (Path(greenlang_llm.__file__).parent / "py.typed").exists()
