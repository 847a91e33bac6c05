"""The seed's Quick Start 3 runs unchanged and writes its reports."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart_3_costs.py"


def _run(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GREENLANG_LLM_DB": str(cwd / "ledger.db")}
    return subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_quickstart_3_tracks_a_usage_and_exports_csv_and_json(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Budget used: 0.0%" in result.stdout
    assert "Remaining: $999.99" in result.stdout
    assert (tmp_path / "ledger.db").exists()
    assert not (tmp_path / "greenlang_llm.db").exists()
    rows = list(csv.DictReader((tmp_path / "costs.csv").open()))
    assert [(r["tenant_id"], r["total_cost_usd"]) for r in rows] == [("acme-corp", "0.0105")]
    data = json.loads((tmp_path / "costs.json").read_text())
    assert data["summary"]["total_cost_usd"] == 0.0105
    assert Decimal(str(data["records"][0]["output_cost_usd"])) == Decimal("0.0075")


def test_a_second_run_adds_to_the_same_durable_ledger(tmp_path: Path) -> None:
    assert _run(tmp_path).returncode == 0
    assert _run(tmp_path).returncode == 0
    rows = list(csv.DictReader((tmp_path / "costs.csv").open()))
    assert sum(Decimal(r["total_cost_usd"]) for r in rows) == Decimal("0.0210")
