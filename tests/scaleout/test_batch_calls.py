"""The batch calls a replica's ledger writer uses: one state round trip per batch, same semantics."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_cost_tracker_release_many_frees_each_reservation_once(tmp_path: Path) -> None:
    from greenlang_llm.cost_tracker import CostTracker

    tracker = CostTracker(storage=f"sqlite:///{tmp_path}/l.db")
    tracker.set_budget("acme", 1.0, hard_limit=True)
    held = [tracker.reserve("acme", 0.3) for _ in range(3)]
    assert tracker.release_many([held[0], held[1], held[0]]) == [True, True, False]
    assert tracker.check_budget("acme").reserved_usd == pytest.approx(0.3)
    tracker.close()
