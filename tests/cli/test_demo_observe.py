"""The demo's observer attributes failed attempts to requests, and its dashboard renders offline."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from greenlang_llm import LLMRouter, ServiceUnavailableError
from greenlang_llm.cli._demo_observe import CURRENT_REQUEST, Observer, observed
from greenlang_llm.cli._demo_run import DemoSettings, DemoState
from greenlang_llm.cli._demo_ui import _events_panel, _status_line, provider_table
from greenlang_llm.providers import FakeProvider
from greenlang_llm.providers.base_provider import GenerationRequest


async def test_failed_attempt_is_noted_against_the_current_request() -> None:
    observer = Observer()
    down = observed(
        FakeProvider,
        observer,
        "premium/anthropic",
        model_id="claude",
        script=[ServiceUnavailableError("down")],
    )
    up = observed(FakeProvider, observer, "premium/openai", model_id="gpt", default_text="fine thanks")
    router = LLMRouter(max_failovers=1)
    router.register_provider("anthropic", down, priority=1)
    router.register_provider("openai", up, priority=2)
    token = CURRENT_REQUEST.set(41)
    try:
        response = await router.generate(GenerationRequest(prompt="hello"))
    finally:
        CURRENT_REQUEST.reset(token)
    assert response.provider == "openai"
    assert observer.attempts[41] == [("premium/anthropic", "ServiceUnavailableError")]
    assert list(observer.latencies_ms) == ["premium/openai"]
    assert isinstance(down, FakeProvider)  # the router still sees the real provider class


async def test_streams_are_observed_and_closed() -> None:
    observer = Observer()
    provider = observed(FakeProvider, observer, "economy/openai", default_text="one two three")
    chunks = [c async for c in provider.stream(GenerationRequest(prompt="count"))]
    assert "".join(c.text for c in chunks) == "one two three"
    assert len(observer.latencies_ms["economy/openai"]) == 1
    assert observer.attempts == {}


def test_events_reach_listeners_and_the_recent_window() -> None:
    observer = Observer()
    seen: list[str] = []
    observer.listeners.append(lambda e: seen.append(e.text))
    for i in range(12):
        observer.emit("info", f"event {i}")
    assert seen[-1] == "event 11"
    assert len(observer.recent) == 8
    assert len(observer.events) == 12


def test_dashboard_renders_provider_health_breakers_and_events(tmp_path: Path) -> None:
    state = DemoState(DemoSettings(requests=10, seed=1, strategy="priority", out_dir=tmp_path))
    router = LLMRouter()
    router.register_provider("anthropic", FakeProvider(model_id="claude-x"))
    state.routers["premium"] = router
    state.labels[("premium", "anthropic")] = "claude-x"
    state.done, state.spend_usd = 4, 0.25
    state.active_faults["outage"] = "Anthropic outage: every call answers 529 overloaded"
    state.observer.emit("breaker", "breaker premium/anthropic: closed → open", "red")
    console = Console(record=True, width=140, force_terminal=False)
    console.print(_status_line(state))
    console.print(provider_table(state))
    console.print(_events_panel(state))
    text = console.export_text()
    assert "done 4/10" in text
    assert "fault active: Anthropic outage" in text
    assert "claude-x" in text
    assert "closed" in text
    assert "breaker premium/anthropic: closed → open" in text
