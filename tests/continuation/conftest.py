"""Fixtures for mid-stream continuation and the failover table (issue 14): a simulator whose models
reply with 60 words, and providers on it that do not retry on their own (the router's table decides)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from greenlang_llm.simulator import Simulator, SimulatorConfig

_HERE = Path(__file__).parent
for _dir in (_HERE, _HERE.parent / "gateway"):
    if str(_dir) not in sys.path:
        sys.path.insert(0, str(_dir))

from continuation_support import MODEL, WORDS  # noqa: E402


@pytest.fixture(autouse=True)
def prices() -> Iterator[None]:
    """Prices (and context windows) for the simulator's made-up models, so costs are never 0."""
    from greenlang_llm import pricing

    for model in (MODEL, "second", "refuser", "other"):
        pricing.set_price_override(model, input_per_mtok=3, output_per_mtok=15)
    pricing.set_price_override("small-ctx", input_per_mtok=1, output_per_mtok=5, context_window=60)
    pricing.set_price_override("big-ctx", input_per_mtok=3, output_per_mtok=15, context_window=400)
    yield
    pricing.clear_price_overrides()


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimulatorConfig.from_dict({
        "seed": 3,
        "defaults": {"reply_tokens": WORDS},
        "models": {"big-ctx": {"reply_tokens": WORDS, "context_window": 400},
                   "small-ctx": {"reply_tokens": WORDS, "context_window": 60}},
    })
    async with Simulator(config) as simulator:
        yield simulator
