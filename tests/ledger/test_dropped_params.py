"""``dropped_params``: the fields a provider could not honour, kept with each usage record.

Every backend (tests/ledger/conftest.py parametrizes the URL): written and read back, an old
ledger (schema version 2, before the column) upgraded in place, exported, tracked in batches,
and bad names refused with nothing written.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from greenlang_llm import CostTracker, InvalidRequestError, TokenUsage
from greenlang_llm.ledger import migrations, open_ledger
from greenlang_llm.ledger.base import MAX_US, MIN_US
from greenlang_llm.ledger.records import UsageRecord, build_record, check_dropped_params
from greenlang_llm.ledger.reports import CSV_COLUMNS, LedgerReports

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
TS = datetime(2026, 1, 5, 12, tzinfo=UTC)
OLD_CSV_COLUMNS = (
    "timestamp", "provider", "tenant_id", "agent_id", "model_id", "input_tokens", "output_tokens",
    "total_tokens", "input_cost_usd", "output_cost_usd", "total_cost_usd",
    "cache_read_tokens", "cache_write_tokens", "estimated", "request_id",
)  # fmt: skip


def rec(i: int, dropped: tuple[str, ...] = (), request_id: str | None = None) -> UsageRecord:
    return UsageRecord(
        T0 + i, "p", "t", "a", "m", 1, 2, 3, 0, 0, 1000, 0, 1000, False, request_id, dropped
    )


def usage() -> TokenUsage:
    return TokenUsage(10, 5, 15, input_cost_usd=0.1, output_cost_usd=0.2, total_cost_usd=0.3)


@pytest.fixture
def tracker(ledger_url: str) -> Iterator[CostTracker]:
    with CostTracker(storage=ledger_url, clock=lambda: TS) as t:
        yield t


def _all(tracker: CostTracker) -> list[UsageRecord]:
    return list(tracker.ledger.iter_records(MIN_US, MAX_US))


# -- validation ---------------------------------------------------------------------------------


def test_names_are_kept_in_order_without_duplicates() -> None:
    assert check_dropped_params(None) == ()
    assert check_dropped_params([]) == ()
    assert check_dropped_params(["seed", "presence_penalty", "seed"]) == ("seed", "presence_penalty")
    assert check_dropped_params(n for n in ("top_k", "messages[].name")) == ("top_k", "messages[].name")
    assert build_record("p", "t", "a", "m", usage(), TS).dropped_params == ()
    assert build_record("p", "t", "a", "m", usage(), TS, None, ["seed"]).dropped_params == ("seed",)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("seed", "must be a list of field names"),  # a lone string is not read as its letters
        ("seed,top_k", "must be a list of field names"),
        (b"seed", "must be a list of field names"),
        (42, "must be a list of field names"),
        (["seed,top_k"], "is not a field name"),
        ([""], "is not a field name"),
        (["two words"], "is not a field name"),
        (["1seed"], "is not a field name"),
        (["x" * 65], "is not a field name"),
        (["seed\n"], "is not a field name"),
        ([None], "each name must be a string"),
        ([f"f{i}" for i in range(65)], "more than 64 names"),
    ],
)
def test_a_bad_value_is_refused_naming_the_field(bad: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message) as info:
        build_record("p", "t", "a", "m", usage(), TS, None, bad)
    assert "dropped_params" in str(info.value)


# -- storage --------------------------------------------------------------------------------------


def test_round_trip_through_the_ledger(ledger_url: str) -> None:
    ledger = open_ledger(ledger_url)
    try:
        written = ledger.insert_many(
            [
                rec(0, ("seed", "presence_penalty")),
                rec(1),
                rec(2, ("messages[].name",), request_id="r2"),
                rec(3, ("top_k",), request_id="r2"),  # a duplicate id: skipped, its names too
            ]
        )
        assert written == [True, True, True, False]
        out = list(ledger.iter_records(MIN_US, MAX_US))
        assert [r.dropped_params for r in out] == [("seed", "presence_penalty"), (), ("messages[].name",)]
        assert out[0] == rec(0, ("seed", "presence_penalty"))
    finally:
        ledger.close()


def test_track_usage_and_commit_keep_the_names(tracker: CostTracker) -> None:
    assert tracker.track_usage("openai", "acme", "a", "m", usage(), request_id="r1", dropped_params=["seed"])
    assert tracker.track_usage("openai", "acme", "a", "m", usage(), request_id="r2")  # the default: none
    tracker.set_budget("acme", 100.0, hard_limit=True)
    held = tracker.reserve("acme", 1.0, provider="claude", dropped_params=("top_k",))
    assert tracker.commit(held, usage(), request_id="r3")
    by_id = {r.request_id: r.dropped_params for r in _all(tracker)}
    assert by_id == {"r1": ("seed",), "r2": (), "r3": ("top_k",)}


def test_track_many_with_dropped_params(tracker: CostTracker) -> None:
    items: list[dict[str, Any]] = [
        {"provider": "claude", "tenant_id": "acme", "usage": usage(), "request_id": "a",
         "dropped_params": ("seed", "presence_penalty")},
        {"provider": "claude", "tenant_id": "acme", "usage": usage(), "request_id": "b"},
        {"provider": "claude", "tenant_id": "acme", "usage": usage(), "request_id": "c",
         "dropped_params": []},
    ]  # fmt: skip
    assert tracker.track_many(items) == 3
    by_id = {r.request_id: r.dropped_params for r in _all(tracker)}
    assert by_id == {"a": ("seed", "presence_penalty"), "b": (), "c": ()}


def test_a_bad_value_writes_nothing(tracker: CostTracker) -> None:
    good = {"provider": "claude", "tenant_id": "acme", "usage": usage(), "request_id": "ok"}
    bad = {**good, "request_id": "bad", "dropped_params": ["seed,top_k"]}
    with pytest.raises(InvalidRequestError, match=r"records\[1\]: dropped_params: 'seed,top_k'"):
        tracker.track_many([good, bad])
    with pytest.raises(InvalidRequestError, match="dropped_params must be a list"):
        tracker.track_usage("claude", "acme", "a", "m", usage(), dropped_params="seed")
    assert tracker.ledger.count_records() == 0
    assert tracker.get_summary().total_requests == 0
    assert tracker.track_usage("claude", "acme", "a", "m", usage(), request_id="ok")  # the ledger still works
    assert [r.dropped_params for r in _all(tracker)] == [()]


# -- exports --------------------------------------------------------------------------------------


def test_exports_append_the_column_and_keep_the_old_ones_in_place(ledger_url: str, tmp_path: Path) -> None:
    assert (*OLD_CSV_COLUMNS, "dropped_params") == CSV_COLUMNS
    ledger = open_ledger(ledger_url)
    try:
        ledger.insert_many([rec(0, ("seed", "presence_penalty"), "r0"), rec(1, (), "r1")])
        reports = LedgerReports(ledger)

        assert reports.export_csv(tmp_path / "out.csv") == 2
        with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert [row[-1] for row in rows[1:]] == ["seed,presence_penalty", ""]  # one quoted cell
        assert [row[CSV_COLUMNS.index("request_id")] for row in rows[1:]] == ["r0", "r1"]
        assert '"seed,presence_penalty"' in (tmp_path / "out.csv").read_text(encoding="utf-8")

        assert reports.export_json(tmp_path / "out.json") == 2
        data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
        assert [r["dropped_params"] for r in data["records"]] == [["seed", "presence_penalty"], []]
        assert list(data["records"][0]) == list(CSV_COLUMNS)
    finally:
        ledger.close()


# -- migration ------------------------------------------------------------------------------------


def _old_ledger(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Create the ledger as schema version 2 wrote it (the migrations before the column), with a row."""
    old = tuple(m for m in migrations.MIGRATIONS if m.version <= 2)
    assert len(old) == 2
    assert migrations.latest_version() > 2
    row = (T0, "p", "t", "a", "m", 1, 2, 3, 0, 0, 1000, 0, 1000, 0, "old")
    insert = (
        "INSERT INTO usage_records (ts_us, provider, tenant_id, agent_id, model_id, input_tokens, "
        "output_tokens, total_tokens, cache_read_tokens, cache_write_tokens, input_cost_nanos, "
        "output_cost_nanos, total_cost_nanos, estimated, request_id) VALUES ({})"
    )
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", old)
        if url.startswith("sqlite"):
            conn = sqlite3.connect(str(tmp_path / "ledger.db"), isolation_level=None)
            try:
                cur = conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                migrations.apply_pending(cur, "sqlite")
                cur.execute(insert.format(", ".join("?" * len(row))), row)
                cur.execute("COMMIT")
            finally:
                conn.close()
        else:
            import psycopg

            base, schema = url.split("?schema=")
            assert schema.isidentifier()  # (conftest's gl_test_<hex>)
            with psycopg.connect(base) as pg, pg.transaction():
                pg.execute(f"CREATE SCHEMA {schema}")
                pg.execute(f"SET LOCAL search_path TO {schema}")
                pg_cur = pg.cursor()
                migrations.apply_pending(pg_cur, "postgresql")
                pg_cur.execute(insert.format(", ".join(["%s"] * len(row))), row)


def test_an_old_ledger_gains_the_column_and_keeps_its_rows(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if ":memory:" in ledger_url:
        pytest.skip("an in-memory ledger has no earlier life to migrate")
    _old_ledger(ledger_url, tmp_path, monkeypatch)
    ledger = open_ledger(ledger_url)  # apply_pending runs the migrations after version 2
    try:
        assert ledger.schema_version() == migrations.latest_version()  # type: ignore[attr-defined]
        [old] = ledger.iter_records(MIN_US, MAX_US)
        assert (old.request_id, old.dropped_params, old.total_cost_nanos) == ("old", (), 1000)
        assert ledger.insert_many([rec(1, ("seed",), "new"), rec(2, (), "old")]) == [True, False]
        assert [(r.request_id, r.dropped_params) for r in ledger.iter_records(MIN_US, MAX_US)] == [
            ("old", ()),
            ("new", ("seed",)),
        ]
    finally:
        ledger.close()
    reopened = open_ledger(ledger_url)  # and opening it again changes nothing
    try:
        assert reopened.schema_version() == migrations.latest_version()  # type: ignore[attr-defined]
        assert reopened.count_records() == 2
    finally:
        reopened.close()
