"""Suite-wide guards: no real provider can be reached and no real key is present."""

from __future__ import annotations

import os

import pytest

_SECRET_VARS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL")


@pytest.fixture(autouse=True)
def _no_real_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's keys and may only call loopback hosts."""
    for name in _SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GREENLANG_LLM_LOOPBACK_ONLY", "1")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    assert os.environ.get("GREENLANG_LLM_LOOPBACK_ONLY") == "1"
