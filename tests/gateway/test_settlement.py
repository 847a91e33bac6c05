"""Settlement: a request's account, booked or released exactly once, one record per upstream call."""

from __future__ import annotations

from typing import Any

import pytest

from greenlang_llm._types import SplitUsage, TokenUsage, UsagePart
from greenlang_llm.gateway.keys import VirtualKey
from greenlang_llm.gateway.metrics import Metrics
from greenlang_llm.gateway.settlement import Settlement


class RecordingLedger:
    """``LedgerWriter.submit``'s shape: remembers (reservation, record, wait) in queue order."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, dict[str, Any] | None, bool]] = []

    def submit(self, reservation: Any, record: dict[str, Any] | None, wait: bool = False) -> None:
        self.items.append((reservation, record, wait))


def _settlement(holds: list[Any] | None = None) -> tuple[Settlement, RecordingLedger, Metrics]:
    ledger, metrics = RecordingLedger(), Metrics()
    key = VirtualKey("acme", "web")
    return Settlement(ledger, metrics, key, "req_1", "hold-request", holds), ledger, metrics  # type: ignore[arg-type]


def test_a_plain_usage_is_one_record_that_frees_the_reservation() -> None:
    settlement, ledger, metrics = _settlement()
    settlement.book(TokenUsage(10, 5, 15, total_cost_usd=0.25), "claude", "haiku")
    [(reservation, record, wait)] = ledger.items
    assert reservation == "hold-request"
    assert record is not None
    assert (record["request_id"], record["provider"], record["model_id"]) == ("req_1", "claude", "haiku")
    assert (record["tenant_id"], record["agent_id"]) == ("acme", "web")
    assert wait is False
    assert metrics.tokens[("acme", "claude", "input")] == 10


def test_a_continued_stream_books_each_call_and_frees_everything_after_the_last_record() -> None:
    holds = ["hold-continuation"]
    settlement, ledger, _ = _settlement(holds)
    parts = (
        UsagePart("claude", "haiku", TokenUsage(10, 4, 14)),
        UsagePart("gpt", "mini", TokenUsage(14, 6, 20)),
    )
    settlement.book(SplitUsage(24, 10, 34, parts=parts), "claude", "haiku", durable=True)
    assert [(r, rec["request_id"] if rec else None, rec["provider"] if rec else None, w)
            for r, rec, w in ledger.items] == [
        (None, "req_1", "claude", False),
        ("hold-request", "req_1.2", "gpt", True),  # the reservation goes with the last record
        ("hold-continuation", None, None, False),  # and the continuation's hold right behind it
    ]
    assert holds == []


def test_only_the_first_of_book_and_release_counts() -> None:
    settlement, ledger, _ = _settlement(["hold-continuation"])
    settlement.release()
    settlement.release()
    assert settlement.book(TokenUsage(1, 1, 2), "claude", "haiku") is None
    assert ledger.items == [("hold-request", None, False), ("hold-continuation", None, False)]


def test_a_request_without_a_reservation_or_holds_releases_nothing() -> None:
    ledger, metrics = RecordingLedger(), Metrics()
    Settlement(ledger, metrics, VirtualKey("acme", "web"), "req_2", None).release()  # type: ignore[arg-type]
    assert ledger.items == []


def test_a_record_that_cannot_be_queued_still_frees_the_reservation_and_the_holds() -> None:
    """A failure while booking (here the second part's record) must not leave money held until the TTL."""

    class FailingLedger(RecordingLedger):
        def submit(self, reservation: Any, record: dict[str, Any] | None, wait: bool = False) -> None:
            if record is not None and record["request_id"] == "req_1.2":
                raise RuntimeError("queue refused the record")
            super().submit(reservation, record, wait)

    ledger, holds = FailingLedger(), ["hold-continuation"]
    settlement = Settlement(ledger, Metrics(), VirtualKey("acme", "web"), "req_1", "hold-request", holds)  # type: ignore[arg-type]
    parts = (
        UsagePart("claude", "haiku", TokenUsage(10, 4, 14)),
        UsagePart("gpt", "mini", TokenUsage(14, 6, 20)),
    )
    with pytest.raises(RuntimeError, match="queue refused"):  # the ledger's refusal reaches the caller
        settlement.book(SplitUsage(24, 10, 34, parts=parts), "claude", "haiku")
    released = [reservation for reservation, record, _ in ledger.items if record is None]
    assert released == ["hold-request", "hold-continuation"]
    assert holds == []
    settlement.release()  # a later release is a no-op: nothing is freed twice
    assert [r for r, rec, _ in ledger.items if rec is None] == ["hold-request", "hold-continuation"]


def test_dropped_fields_go_into_the_record_only_when_there_are_some() -> None:
    settlement, ledger, _ = _settlement()
    settlement.book(TokenUsage(10, 5, 15), "claude", "haiku", dropped=("seed", "presence_penalty"))
    plain, plain_ledger, _ = _settlement()
    plain.book(TokenUsage(10, 5, 15), "claude", "haiku")
    [(_, record, _)] = ledger.items
    [(_, plain_record, _)] = plain_ledger.items
    assert record is not None
    assert plain_record is not None
    assert record["dropped_params"] == ("seed", "presence_penalty")
    assert set(plain_record) == {"provider", "tenant_id", "agent_id", "model_id", "usage", "request_id"}
    assert {k: v for k, v in record.items() if k != "dropped_params"} == plain_record


def test_a_continued_stream_keeps_the_dropped_fields_on_its_first_record() -> None:
    settlement, ledger, _ = _settlement()
    parts = (
        UsagePart("claude", "haiku", TokenUsage(10, 4, 14)),
        UsagePart("gpt", "mini", TokenUsage(14, 6, 20)),
    )
    settlement.book(SplitUsage(24, 10, 34, parts=parts), "claude", "haiku", dropped=("top_k",))
    records = [rec for _, rec, _ in ledger.items if rec is not None]
    assert [(r["request_id"], r.get("dropped_params")) for r in records] == [
        ("req_1", ("top_k",)),
        ("req_1.2", None),
    ]


async def test_dropped_fields_reach_the_tracker_and_the_ledger(caplog: pytest.LogCaptureFixture) -> None:
    """Through the real LedgerWriter and CostTracker, in a batch and in the one-by-one fallback."""
    from greenlang_llm.cost_tracker import CostTracker
    from greenlang_llm.gateway.ledger_writer import LedgerWriter
    from greenlang_llm.ledger.base import MAX_US, MIN_US

    with CostTracker(storage="sqlite:///:memory:") as tracker:
        writer = LedgerWriter(tracker)
        try:
            key = VirtualKey("acme", "web")
            book = Settlement(writer, Metrics(), key, "req_a", None)
            future = book.book(TokenUsage(10, 5, 15, total_cost_usd=0.01), "claude", "haiku",
                               durable=True, dropped=("seed", "presence_penalty"))  # fmt: skip
            assert future is not None
            await future
            # a batch holding a bad record is written one by one (track_usage(**record)):
            # the good record keeps its names there too
            good = Settlement(writer, Metrics(), key, "req_b", None)
            bad = Settlement(writer, Metrics(), key, "req_c", None)
            bad.book(TokenUsage(1, 1, 2), "claude", "haiku", dropped=("not,a,name",))
            future = good.book(TokenUsage(1, 1, 2), "claude", "haiku", durable=True, dropped=("top_k",))
            assert future is not None
            await future
            await writer.drain()
        finally:
            writer.close()
        rows = {r.request_id: r.dropped_params for r in tracker.ledger.iter_records(MIN_US, MAX_US)}
    assert rows == {"req_a": ("seed", "presence_penalty"), "req_b": ("top_k",)}
    assert "writing records one by one" in caplog.text  # (the fallback path was taken)
    assert "ledger write failed for request req_c" in caplog.text
