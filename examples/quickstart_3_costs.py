"""Quick Start 3 of the original README, verbatim (only ``llm`` → ``greenlang_llm``).

Writes costs.csv and costs.json in the working directory; the ledger is
``greenlang_llm.db`` there, or wherever ``GREENLANG_LLM_DB`` points.
"""

from greenlang_llm import CostTracker
from greenlang_llm.providers.base_provider import TokenUsage

# Initialize tracker
tracker = CostTracker()

# Set budget with alerts at 80%, 90%, 100%
tracker.set_budget(
    tenant_id="acme-corp",
    monthly_limit_usd=1000.0,
    alert_thresholds=[0.8, 0.9, 1.0]
)

# Register alert callback
def on_alert(tenant_id, threshold, current_cost):
    print(f"ALERT: {threshold*100:.0f}% budget used (${current_cost:.2f})")

tracker.register_alert_callback(on_alert)

# Track usage
usage = TokenUsage(
    input_tokens=1000,
    output_tokens=500,
    total_tokens=1500,
    input_cost_usd=0.003,
    output_cost_usd=0.0075,
    total_cost_usd=0.0105
)

tracker.track_usage(
    provider="anthropic",
    tenant_id="acme-corp",
    agent_id="esg-agent",
    model_id="claude-3-sonnet",
    usage=usage
)

# Check budget
status = tracker.check_budget("acme-corp")
print(f"Budget used: {status.percentage_used:.1f}%")
print(f"Remaining: ${status.remaining_usd:.2f}")

# Export report
tracker.export_csv("costs.csv")
tracker.export_json("costs.json", include_summary=True)
