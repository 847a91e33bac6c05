"""The demo's workload and fault schedule: a pure function of (seed, request count).

Why a plan up front: "deterministic for a given seed" has to mean the same
requests, in the same order, with the same arrival times and the same faults at
the same points — independent of how fast the machine is. So everything
random is drawn here from one seeded ``random.Random`` before anything runs;
faults are tied to request *indices* (the outage starts when request k is sent),
not to wall-clock time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "AGENTS",
    "TENANTS",
    "DemoRequest",
    "FaultStep",
    "Tier",
    "arrival_span",
    "fault_schedule",
    "plan_workload",
]


@dataclass(frozen=True, slots=True)
class Tier:
    """A route: two deployments of comparable models at the two vendors, primary first."""

    name: str
    anthropic_model: str
    openai_model: str


TIERS = {
    "premium": Tier("premium", "claude-3-5-sonnet-20241022", "gpt-4o"),
    "economy": Tier("economy", "claude-3-haiku-20240307", "gpt-4o-mini"),
}


@dataclass(frozen=True, slots=True)
class Agent:
    tenant: str
    name: str
    tier: str
    weight: float
    sizes: tuple[str, ...]
    """Prompt sizes this agent sends (drawn uniformly)."""
    stream_share: float
    max_tokens: tuple[int, int]


# Tenants with their agents: a mix of heavy analysts, chatty streamers and tiny classifiers.
AGENTS = (
    Agent("acme-corp", "esg-analyst", "premium", 3.0, ("medium", "large"), 0.2, (200, 400)),
    Agent("acme-corp", "support-bot", "economy", 3.0, ("small", "medium"), 0.7, (80, 200)),
    Agent("globex", "report-writer", "premium", 1.6, ("medium",), 0.6, (250, 500)),
    Agent("globex", "classifier", "economy", 2.5, ("small",), 0.0, (8, 24)),
    Agent("initech", "chat-assistant", "economy", 2.5, ("small", "medium"), 0.8, (100, 250)),
    Agent("initech", "code-reviewer", "premium", 0.8, ("large",), 0.3, (200, 350)),
    Agent("umbrella", "data-extractor", "economy", 1.5, ("medium", "large"), 0.0, (60, 150)),
)
TENANTS = tuple(dict.fromkeys(a.tenant for a in AGENTS))

_TOPICS = (
    "Scope 3 emissions from purchased goods",
    "the carbon intensity of our logistics fleet",
    "water usage at the Rotterdam plant",
    "supplier ESG questionnaire answers",
    "CSRD double-materiality assessment",
    "renewable energy certificates bought last quarter",
    "the methane leak detection programme",
    "employee commuting survey results",
)
_TASKS = {
    "esg-analyst": "Analyse {topic} and list the three largest risks with evidence.",
    "support-bot": "A customer asks about {topic}. Answer politely and briefly.",
    "report-writer": "Draft the executive summary section on {topic} for the annual report.",
    "classifier": "Classify this note about {topic} as one of: risk, opportunity, neutral.",
    "chat-assistant": "Explain {topic} to a new team member in plain words.",
    "code-reviewer": "Review this data pipeline that computes {topic}; point out bugs.",
    "data-extractor": "Extract every figure with its unit from this text about {topic} as JSON.",
}
_FILLER = (
    "The reporting boundary follows the operational control approach. Activity data comes from "
    "invoices, meter readings and supplier declarations, converted with the latest emission factors. "
    "Where primary data is missing we use spend-based estimates and flag them for review. "
)
_SIZES = {"small": 0, "medium": 4, "large": 22}
"""Filler paragraphs per prompt size (each about 50 tokens)."""


@dataclass(frozen=True, slots=True)
class DemoRequest:
    index: int
    tenant: str
    agent: str
    tier: str
    system: str
    prompt: str
    max_tokens: int
    stream: bool
    arrival_s: float
    """Seconds after the start at which the request is sent."""


def arrival_span(requests: int) -> float:
    """How long the arrivals are spread over: ~0.15 s per request, between 3 and 45 s."""
    return min(45.0, max(3.0, requests * 0.15))


def plan_workload(requests: int, seed: int) -> list[DemoRequest]:
    """``requests`` requests with Poisson-like arrivals over :func:`arrival_span` seconds."""
    rng = random.Random(seed)
    weights = [a.weight for a in AGENTS]
    gaps = [rng.expovariate(1.0) for _ in range(requests)]
    scale = arrival_span(requests) / (sum(gaps) or 1.0)
    out: list[DemoRequest] = []
    clock = 0.0
    for i in range(requests):
        agent = rng.choices(AGENTS, weights=weights)[0]
        topic = rng.choice(_TOPICS)
        size = rng.choice(agent.sizes)
        body = _TASKS[agent.name].format(topic=topic)
        filler = " ".join(_FILLER for _ in range(_SIZES[size] + rng.randint(0, 2 if _SIZES[size] else 0)))
        prompt = f"{body}\n\n{filler}".strip() if filler else body
        out.append(DemoRequest(
            index=i,
            tenant=agent.tenant,
            agent=agent.name,
            tier=agent.tier,
            system=f"You are {agent.name}, an assistant for {agent.tenant}. Be accurate and concise.",
            prompt=prompt,
            max_tokens=rng.randint(*agent.max_tokens),
            stream=rng.random() < agent.stream_share,
            arrival_s=round(clock, 3),
        ))
        clock += gaps[i] * scale
    return out


@dataclass(frozen=True, slots=True)
class FaultStep:
    """When request ``at_index`` is sent, switch fault ``fault`` (``outage``/``rate_limit``) on or off."""

    at_index: int
    fault: str
    on: bool


def fault_schedule(requests: int) -> list[FaultStep]:
    """An outage of the preferred vendor over the second quarter, rate limiting on it later."""

    def at(share: float) -> int:
        return min(requests - 1, max(0, round(requests * share)))

    return [
        FaultStep(at(0.22), "outage", True),
        FaultStep(at(0.50), "outage", False),
        FaultStep(at(0.62), "rate_limit", True),
        FaultStep(at(0.80), "rate_limit", False),
    ]
