"""CostTracker: a durable cost ledger with budgets, alerts, forecasts and reports.

Three layers, each replaceable: the *ledger* (``greenlang_llm.ledger``, SQLite or
PostgreSQL) is the durable source of truth; the *budget state*
(``greenlang_llm.state``) is the O(1) month-to-date view and the hard-budget
reservations, rebuilt from the ledger at start; this module validates input,
keeps the two in step and turns integer nano-dollars into the float API.

Order of events for one usage: validate → write to the ledger (group commit,
durable on return) → add to the month-to-date state → claim crossed alert
thresholds in the ledger → run callbacks, outside every lock but the
dispatch lock that keeps them in ascending order.

Budget periods: a usage counts toward the calendar month (UTC) of its timestamp
(:func:`month_key`), or toward one never-ending period ``ALL`` when budgets do not
reset. Reports read the ledger alone, so the tracker hands them to a
:class:`~greenlang_llm.ledger.reports.LedgerReports` over the same storage.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ._errors import BudgetExceededError, InvalidRequestError
from ._types import TokenUsage
from .ledger import LedgerStorage, open_ledger
from .ledger.records import (
    BudgetRecord,
    UsageRecord,
    build_record,
    check_tenant,
    check_thresholds,
    from_us,
    ledger_nanos,
    to_us,
    to_utc,
)
from .ledger.reports import CostSummary, LedgerReports
from .money import nanos_to_usd
from .state import BudgetState, InProcessBudgetState, SettleOutcome, project_month_nanos
from .state.alerts import AlertCallback, AlertDispatcher
from .state.types import BudgetStatus, Reservation

__all__ = ["AlertCallback", "BudgetStatus", "CostSummary", "CostTracker", "Reservation"]

log = logging.getLogger("greenlang_llm.cost_tracker")

_ALL = "all"  # the budget period when budgets never reset
_TRACK_KEYS = frozenset({"provider", "agent_id", "model_id", "request_id", "timestamp", "dropped_params"})
"""Optional fields of one tracked usage (``track_many`` items, ``commit`` keywords)."""


def _month_key(ts: datetime) -> str:
    """The budget period of a usage at ``ts`` when budgets reset monthly: ``"2026-01"``."""
    return f"{ts.year:04d}-{ts.month:02d}"


def _month_start(ts: datetime) -> datetime:
    return ts.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class CostTracker:
    """Track usage into a durable ledger; enforce and report per-tenant monthly budgets.

    Synchronous and thread-safe. ``storage`` is a ledger URL (see ``docs/costs.md``);
    ``clock`` returns an aware UTC datetime (tests inject one to cross month ends);
    ``state`` is the budget state backend (in-process by default).
    """

    def __init__(
        self,
        auto_reset_budgets: bool = True,
        storage: str | os.PathLike[str] | LedgerStorage | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        state: BudgetState | None = None,
        reservation_ttl_s: float = 600.0,
    ) -> None:
        self.auto_reset_budgets = bool(auto_reset_budgets)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._ledger = storage if isinstance(storage, LedgerStorage) else open_ledger(storage)
        self._state = state or InProcessBudgetState()
        self._ttl = float(reservation_ttl_s)
        self._lock = threading.RLock()
        self._alerts = AlertDispatcher(self._ledger)
        self._reports = LedgerReports(self._ledger)
        self._budgets: dict[str, BudgetRecord] = {}
        self._levels: dict[str, tuple[tuple[float, int], ...]] = {}
        for budget in self._ledger.load_budgets().values():
            self._install_budget(budget)
        self._horizon_us = 0
        self._load_state(self._now())
        self._state.bind_loader(self._reload_state)

    # -- plumbing ----------------------------------------------------------------------------------
    @property
    def ledger(self) -> LedgerStorage:
        return self._ledger

    @property
    def quick_writes(self) -> bool:
        """``track_many``/``release_many`` wait on no network and no disk sync (a local SQLite
        ledger with in-process budget state): an event loop may call them itself."""
        return self._ledger.quick_commits and self._state.in_process

    def _now(self) -> datetime:
        now = self._clock()
        if not isinstance(now, datetime) or now.tzinfo is None:
            raise TypeError("clock() must return an aware datetime")
        return now.astimezone(UTC)

    def _load_state(self, now: datetime) -> None:
        """Rebuild month-to-date totals from the ledger for this month and every later one."""
        start = _month_start(now)
        totals: dict[tuple[str, str, int | None], int] = {}
        for tenant, hour_us, nanos in self._ledger.tenant_hourly_costs(to_us(start)):
            hour = from_us(hour_us)
            key = (tenant, _month_key(hour), hour.day)
            totals[key] = totals.get(key, 0) + nanos
        if not self.auto_reset_budgets:
            for tenant, nanos in self._ledger.tenant_totals().items():
                totals[(tenant, _ALL, None)] = nanos
        self._state.load_spend(totals)
        self._horizon_us = to_us(start)

    def _reload_state(self) -> None:
        """Rebuild the state from the ledger (a shared state that lost its data calls this)."""
        with self._lock:
            self._load_state(self._now())

    def _period(self, now: datetime) -> str:
        if to_us(_month_start(now)) < self._horizon_us:  # the clock went back before what we loaded
            with self._lock:
                self._load_state(now)
        return _month_key(now) if self.auto_reset_budgets else _ALL

    def _install_budget(self, budget: BudgetRecord) -> None:
        levels = tuple((t, int(Decimal(repr(t)) * budget.limit_nanos)) for t in budget.thresholds)
        with self._lock:
            self._budgets[budget.tenant_id] = budget
            self._levels[budget.tenant_id] = levels

    # -- budgets -----------------------------------------------------------------------------------
    def set_budget(
        self,
        tenant_id: str,
        monthly_limit_usd: float,
        alert_thresholds: Sequence[float] = [0.8, 0.9, 1.0],  # the seed's default; never mutated
        hard_limit: bool = False,
    ) -> None:
        """Set (or replace) a tenant's monthly budget; persisted in the ledger."""
        tenant = check_tenant(tenant_id)
        limit = ledger_nanos(monthly_limit_usd, "monthly_limit_usd")
        if limit <= 0:
            raise InvalidRequestError(f"monthly_limit_usd must be greater than 0, got {monthly_limit_usd!r}")
        if not isinstance(hard_limit, bool):
            raise InvalidRequestError(f"hard_limit must be True or False, got {hard_limit!r}")
        budget = BudgetRecord(tenant, limit, check_thresholds(alert_thresholds), hard_limit)
        self._ledger.save_budget(budget, to_us(self._now()))
        self._install_budget(budget)

    def list_budgets(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                t: {
                    "monthly_limit_usd": nanos_to_usd(b.limit_nanos),
                    "alert_thresholds": list(b.thresholds),
                    "hard_limit": b.hard_limit,
                }
                for t, b in sorted(self._budgets.items())
            }

    def register_alert_callback(self, callback: AlertCallback) -> None:
        if not callable(callback):
            raise InvalidRequestError(f"alert callback must be callable, got {type(callback).__name__}")
        self._alerts.register(callback)

    def check_budget(self, tenant_id: str) -> BudgetStatus:
        """O(1): reads the in-memory month-to-date state, never the ledger."""
        with self._lock:
            budget = self._budgets.get(tenant_id)
            levels = self._levels.get(tenant_id, ())
        if budget is None:
            raise KeyError(f"no budget set for tenant {tenant_id!r}; call set_budget() first")
        now = self._now()
        period = self._period(now)
        spent = self._state.spend(tenant_id, period)
        month = _month_key(now)
        projected = project_month_nanos(self._state.daily_spend(tenant_id, month), now)
        if period == _ALL:  # everything before this month, plus this month's projection
            projected += spent - self._state.spend(tenant_id, month)
        reached = [t for t, nanos in levels if spent >= nanos]
        limit = budget.limit_nanos
        return BudgetStatus(
            percentage_used=spent * 100 / limit,
            remaining_usd=nanos_to_usd(max(limit - spent, 0)),
            projected_monthly_cost=nanos_to_usd(projected),
            alert_triggered=bool(reached),
            alert_level=reached[-1] if reached else None,
            tenant_id=tenant_id,
            limit_usd=nanos_to_usd(limit),
            spent_usd=nanos_to_usd(spent),
            reserved_usd=nanos_to_usd(self._state.reserved(tenant_id, now.timestamp())),
            hard_limit=budget.hard_limit,
            period_start=_month_start(now) if period != _ALL else None,
        )

    # -- tracking ----------------------------------------------------------------------------------
    def _record(
        self, provider: Any, tenant_id: Any, agent_id: Any, model_id: Any, usage: Any,
        timestamp: Any = None, request_id: Any = None, dropped_params: Any = (),
    ) -> UsageRecord:  # fmt: skip
        if timestamp is None:
            ts = self._now()
        elif isinstance(timestamp, date):
            ts = to_utc(timestamp)
        else:
            raise InvalidRequestError(f"timestamp must be a datetime, got {type(timestamp).__name__}")
        return build_record(provider, tenant_id, agent_id, model_id, usage, ts, request_id, dropped_params)

    def track_usage(
        self,
        provider: str,
        tenant_id: str,
        agent_id: str,
        model_id: str,
        usage: TokenUsage,
        timestamp: datetime | None = None,
        *,
        request_id: str | None = None,
        dropped_params: Iterable[str] = (),
    ) -> bool:
        """Record one usage durably. False when ``request_id`` was already recorded (idempotent).

        ``dropped_params``: the request fields the provider could not honour and that were left
        out (``("seed", "presence_penalty")``), kept with the record; field names, no commas.
        """
        record = self._record(
            provider, tenant_id, agent_id, model_id, usage, timestamp, request_id, dropped_params
        )
        written = self._ledger.insert_many([record])[0]
        if written:
            self._account(record)
            self._raise_alerts({record.tenant_id})
        return written

    def track_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Record many usages in one transaction; all are validated first (one bad → none written).

        Each item is a mapping with the ``track_usage`` arguments (``provider``, ``tenant_id``,
        ``agent_id``, ``model_id``, ``usage``, optional ``timestamp``, ``request_id`` and
        ``dropped_params``).
        Returns how many were written (duplicates of a known ``request_id`` are skipped).
        """
        built: list[UsageRecord] = []
        for i, item in enumerate(records):
            if not isinstance(item, Mapping):
                raise InvalidRequestError(f"records[{i}] must be a mapping, got {type(item).__name__}")
            unknown = set(item) - _TRACK_KEYS - {"tenant_id", "usage"}
            if unknown:
                raise InvalidRequestError(f"records[{i}]: unknown field(s) {sorted(unknown)}")
            try:
                built.append(
                    self._record(
                        item.get("provider"),
                        item.get("tenant_id"),
                        item.get("agent_id", ""),
                        item.get("model_id", ""),
                        item.get("usage"),
                        item.get("timestamp"),
                        item.get("request_id"),
                        item.get("dropped_params", ()),
                    )
                )
            except InvalidRequestError as exc:
                raise InvalidRequestError(f"records[{i}]: {exc}") from exc
        written = self._ledger.insert_many(built)
        kept = [r for r, w in zip(built, written, strict=True) if w]
        spends: list[tuple[str, str, int, int | None]] = []
        for r in kept:  # one state update for the batch (one round trip for a shared state)
            spends.append((r.tenant_id, _month_key(r.timestamp), r.total_cost_nanos, r.timestamp.day))
            if not self.auto_reset_budgets:
                spends.append((r.tenant_id, _ALL, r.total_cost_nanos, None))
        totals = dict(zip(((t, p) for t, p, _, _ in spends), self._state.add_spend_many(spends), strict=True))
        self._raise_alerts({r.tenant_id for r in kept}, totals)
        return len(kept)

    def _account(self, record: UsageRecord, reservation_id: str | None = None) -> None:
        """Add a durable record to the month-to-date state (and settle its reservation, atomically)."""
        ts = record.timestamp
        month, day, nanos = _month_key(ts), ts.day, record.total_cost_nanos
        tenant = record.tenant_id
        if reservation_id is None:
            self._state.add_spend(tenant, month, nanos, day)
            if not self.auto_reset_budgets:
                self._state.add_spend(tenant, _ALL, nanos)
        elif self.auto_reset_budgets:
            self._state.finish_settle(reservation_id, tenant, month, nanos, day)
        else:
            self._state.finish_settle(reservation_id, tenant, _ALL, nanos, None)
            self._state.add_spend(tenant, month, nanos, day)

    # -- alerts ------------------------------------------------------------------------------------
    def _raise_alerts(
        self, tenants: Iterable[str], totals: Mapping[tuple[str, str], int] | None = None
    ) -> None:
        """Hand newly reached thresholds of these tenants to the dispatcher (ascending, once per period).

        ``totals``: period totals the caller just got back from the state (saves a read each).
        """
        now = self._now()
        period = self._period(now)
        with self._lock:
            levels = {t: self._levels[t] for t in tenants if self._levels.get(t)}
        if levels:
            known = totals or {}
            checks = [
                (t, known[(t, period)] if (t, period) in known else self._state.spend(t, period), lv)
                for t, lv in sorted(levels.items())
            ]
            self._alerts.check(period, checks, to_us(now))

    # -- hard budgets --------------------------------------------------------------------------------
    def reserve(self, tenant_id: str, estimated_cost_usd: float, **dims: Any) -> Reservation:
        """Hold ``estimated_cost_usd`` against a hard budget, or raise ``BudgetExceededError``.

        Tenants without a hard budget get a no-op reservation (``enforced=False``).
        ``dims`` (provider, agent_id, model_id, ...) are kept and used as defaults by ``commit``.
        """
        tenant = check_tenant(tenant_id)
        amount = ledger_nanos(estimated_cost_usd, "estimated_cost_usd")
        now = self._now()
        rid = uuid.uuid4().hex
        with self._lock:
            budget = self._budgets.get(tenant)
        expires = now + timedelta(seconds=self._ttl)
        enforced = budget is not None and budget.hard_limit
        if budget is not None and budget.hard_limit:
            period = self._period(now)
            ok = self._state.try_reserve(
                rid, tenant, period, amount, budget.limit_nanos, now.timestamp(), self._ttl, dims
            )
            if not ok:
                spent = self._state.spend(tenant, period)
                held = self._state.reserved(tenant, now.timestamp())
                limit_usd = nanos_to_usd(budget.limit_nanos)
                raise BudgetExceededError(
                    f"monthly budget of tenant {tenant!r} exhausted: limit ${limit_usd:.2f}, "
                    f"spent ${nanos_to_usd(spent):.6f}, reserved ${nanos_to_usd(held):.6f}, "
                    f"this request may cost up to ${nanos_to_usd(amount):.6f}",
                    tenant_id=tenant,
                    limit_usd=limit_usd,
                )
        return Reservation(rid, tenant, nanos_to_usd(amount), now, dict(dims), expires, enforced)

    def commit(self, reservation: Reservation, usage: TokenUsage, **track: Any) -> bool:
        """Record the actual usage and free the reservation in one step.

        ``track`` takes ``provider``, ``agent_id``, ``model_id``, ``request_id``, ``timestamp``,
        ``dropped_params`` (defaults from the reservation's dims; a provider named nowhere is recorded as
        ``"unknown"``). Committing a reservation twice, or after
        ``release``, raises ``InvalidRequestError``; an expired one still records the usage.
        Returns False when ``request_id`` was already recorded.
        """
        if not isinstance(reservation, Reservation):
            raise InvalidRequestError(f"commit() needs a Reservation, got {type(reservation).__name__}")
        unknown = set(track) - _TRACK_KEYS
        if unknown:
            raise InvalidRequestError(f"commit(): unknown argument(s) {sorted(unknown)}")
        dims = {**{k: v for k, v in reservation.dims.items() if k in _TRACK_KEYS}, **track}
        record = self._record(
            dims.get("provider", "unknown"), reservation.tenant_id, dims.get("agent_id", ""),
            dims.get("model_id", ""),
            usage, dims.get("timestamp"), dims.get("request_id"), dims.get("dropped_params", ()),
        )  # fmt: skip
        outcome = self._state.begin_settle(reservation.id)
        if outcome is SettleOutcome.SETTLED:
            raise InvalidRequestError(f"reservation {reservation.id} was already committed or released")
        try:
            written = self._ledger.insert_many([record])[0]
        except BaseException:
            if outcome is SettleOutcome.OPEN:
                self._state.abort_settle(reservation.id)
            raise
        if outcome is SettleOutcome.OPEN:
            if written:
                self._account(record, reservation.id)
            else:  # a duplicate request id: nothing new was spent
                period = _month_key(record.timestamp) if self.auto_reset_budgets else _ALL
                self._state.finish_settle(reservation.id, record.tenant_id, period, 0, None)
        elif written:
            self._account(record)
        if written:
            self._raise_alerts({record.tenant_id})
        return written

    def release(self, reservation: Reservation) -> bool:
        """Free a reservation unused. Releasing twice (or after commit) is a no-op returning False."""
        if not isinstance(reservation, Reservation):
            raise InvalidRequestError(f"release() needs a Reservation, got {type(reservation).__name__}")
        return self._state.release(reservation.id)

    def release_many(self, reservations: Iterable[Reservation]) -> list[bool]:
        """``release`` for each reservation, in order; one round trip for a shared (Redis) state."""
        items = list(reservations)
        for r in items:
            if not isinstance(r, Reservation):
                raise InvalidRequestError(f"release_many() needs Reservations, got {type(r).__name__}")
        return self._state.release_many([r.id for r in items])

    # -- reports (the ledger's read side) -------------------------------------------------------------
    def get_summary(
        self,
        start_date: datetime | date | None = None,
        end_date: datetime | date | None = None,
        tenant_id: str | None = None,
    ) -> CostSummary:
        """Totals and breakdowns over an inclusive UTC range (aggregated in SQL over integer nanos)."""
        return self._reports.summary(start_date, end_date, tenant_id)

    def get_time_series(
        self,
        start_date: datetime | date | None,
        end_date: datetime | date | None,
        granularity: str = "daily",
        tenant_id: str | None = None,
    ) -> list[tuple[datetime, float]]:
        """Cost per bucket, in order, empty buckets as 0.0; buckets start at UTC hour/day/month."""
        return self._reports.time_series(start_date, end_date, granularity, tenant_id)

    def export_csv(
        self,
        path: str | os.PathLike[str],
        start_date: datetime | date | None = None,
        end_date: datetime | date | None = None,
        *,
        tenant_id: str | None = None,
    ) -> int:
        """One row per record (columns in docs/costs.md); returns the row count.

        ``tenant_id`` exports only that tenant's records (filtered by the ledger, in SQL).
        """
        return self._reports.export_csv(path, start_date, end_date, tenant_id=tenant_id)

    def export_json(
        self,
        path: str | os.PathLike[str],
        start_date: datetime | date | None = None,
        end_date: datetime | date | None = None,
        include_summary: bool = False,
        *,
        tenant_id: str | None = None,
    ) -> int:
        """``{"records": [...], "summary": {...}}`` (summary only when asked); returns the record count.

        ``tenant_id`` exports only that tenant's records, and the summary is then that tenant's.
        """
        return self._reports.export_json(path, start_date, end_date, include_summary, tenant_id=tenant_id)

    # -- lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        self._ledger.close()
        self._state.close()

    def __enter__(self) -> CostTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
