"""Budget state in Redis, shared by every gateway replica: one month-to-date view, one set of holds.

Each operation is one Lua script (``redis_scripts``), so a reservation is one atomic
check-and-hold across replicas. Three failure modes are handled, each on the safe side:

- **A replica dies holding reservations.** Holds carry an expiry; any replica's next
  look at the tenant frees expired ones. A hold being committed gets one extra TTL.
- **Redis loses its data** (restart without persistence, ``FLUSHALL``). The ``epoch``
  key disappears with it; every reservation is then refused (conservative) while one
  replica, holding a short lock, rebuilds the month-to-date totals from the ledger
  (the tracker's loader). Replicas notice the new epoch within ``watch_interval`` and
  put back the holds they still have open; reservations resume after ``grace_s``, so
  those holds are counted before anyone reserves again. Spend committed between the
  loss and the rebuild may be counted twice: an over-count, never an under-count.
- **Redis is unreachable at run time.** The replica logs a warning and decides alone:
  a tenant may reserve only its share (1/replicas) of the budget left as last seen;
  a tenant never seen is refused. Spend recorded meanwhile is queued and replayed
  when Redis answers again. Never unlimited.

The interface is synchronous (``BudgetState``): each call is one round trip, cheap on
loopback (see docs/benchmarks.md "Scale-out").
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .base import BudgetState, SettleOutcome
from .redis_client import connect_redis, redis_errors
from .redis_scripts import (
    ABORT_SETTLE,
    ADD_SPEND,
    BEGIN_SETTLE,
    FINISH_SETTLE,
    HEARTBEAT,
    LOAD,
    RELEASE,
    RESERVE,
    RESERVED,
    RESTORE,
)
from .redis_watcher import Hold as _Hold
from .redis_watcher import RedisStateWatcher

__all__ = ["RedisBudgetState"]

log = logging.getLogger("greenlang_llm.state.redis")

_OUTCOMES = {1: SettleOutcome.OPEN, 2: SettleOutcome.SETTLED, 3: SettleOutcome.UNKNOWN}


class RedisBudgetState(RedisStateWatcher, BudgetState):
    """``client`` is a ``redis.Redis`` (``decode_responses=True``) or a URL; ``prefix`` namespaces keys."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "greenlang:",
        grace_s: float = 1.0,
        watch_interval: float = 0.2,
        watch: bool = True,
    ) -> None:
        self._redis = connect_redis(client) if isinstance(client, str) else client
        self._errors = redis_errors()
        self.prefix = prefix
        self.replica_id = uuid.uuid4().hex[:12]
        self.grace_s = grace_s
        self.watch_interval = watch_interval
        s = self._redis.register_script
        self._s_reserve, self._s_reserved, self._s_restore = s(RESERVE), s(RESERVED), s(RESTORE)
        self._s_begin, self._s_abort, self._s_finish = s(BEGIN_SETTLE), s(ABORT_SETTLE), s(FINISH_SETTLE)
        self._s_add, self._s_release, self._s_load = s(ADD_SPEND), s(RELEASE), s(LOAD)
        self._s_heartbeat = s(HEARTBEAT)
        self._lock = threading.Lock()
        self._epoch: str | None = None
        self._loader: Callable[[], None] | None = None
        self._holds: dict[str, _Hold] = {}  # this replica's open reservations (to restore after a loss)
        self._seen: dict[tuple[str, str], tuple[int, int]] = {}  # last (spend, reserved) Redis reported
        self._replicas = 1
        self._outage = False
        self._pending: list[tuple[str, tuple[Any, ...]]] = []  # writes to replay after an outage
        self._outage_spend: dict[tuple[str, str], int] = {}
        self._local_ids: set[str] = set()  # holds granted alone during an outage
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._watch_enabled = watch
        self._lost_seen = False
        self._watcher: threading.Thread | None = None

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and this replica decides alone (local limits)."""
        return self._outage

    @property
    def ready(self) -> bool:
        """True when the shared view is built and current (not rebuilding, not in an outage)."""
        return self._epoch is not None and not self._outage

    @property
    def in_use(self) -> bool:
        """True once a tracker loaded the view (a state nobody loads is not watched)."""
        return self._epoch is not None or self._watcher is not None

    @property
    def rebuilding(self) -> bool:
        """True after Redis lost its data, until the view is rebuilt from the ledger."""
        return self._epoch is None or self._lost_seen

    @property
    def replicas(self) -> int:
        """Live replicas sharing this state, as last counted by the heartbeat."""
        return self._replicas

    def bind_loader(self, loader: Callable[[], None]) -> None:
        self._loader = loader

    def _call(self, script: Any, *args: Any) -> Any:
        return script(args=(self.prefix, *args))

    def _fail(self, exc: BaseException) -> None:
        if not self._outage:
            self._outage = True
            log.warning(
                "Redis unreachable (%s: %s): budgets fall back to local limits (each replica may use "
                "1/%d of the budget left as last seen) until it answers again",
                type(exc).__name__,
                exc,
                self._replicas,
            )

    # -- month-to-date spend ---------------------------------------------------------------------
    def load_spend(self, totals: Mapping[tuple[str, str, int | None], int]) -> None:
        """Build the shared view from ledger totals, unless a live one exists (then adopt it)."""
        args: list[Any] = []
        for (tenant, period, day), nanos in totals.items():
            args += [tenant, period, "" if day is None else day, int(nanos)]
        epoch, _built = self._call(self._s_load, uuid.uuid4().hex, int(self.grace_s * 1000), *args)
        self._adopt(epoch)
        if self._watch_enabled and self._watcher is None:  # in use now: watch for loss and outages
            self._watcher = threading.Thread(target=self._watch, name="greenlang-redis-state", daemon=True)
            self._watcher.start()

    def _adopt(self, epoch: str) -> None:
        """Put this replica's open holds back (they vanished with the data), then use ``epoch``."""
        with self._lock:
            holds = list(self._holds.items())
        for rid, h in holds:
            self._restore(rid, h)
        if self._epoch is not None and epoch != self._epoch:
            log.warning(
                "Redis budget state rebuilt (epoch %s); %d open holds restored", epoch[:8], len(holds)
            )
        self._epoch = epoch

    def add_spend(self, tenant_id: str, period: str, nanos: int, day: int | None = None) -> int:
        args = (tenant_id, period, int(nanos), "" if day is None else day)
        if not self._outage:
            try:
                return int(self._call(self._s_add, *args))
            except self._errors as exc:
                self._fail(exc)
        return self._queue("add", args, tenant_id, period, nanos)

    def add_spend_many(self, items: Sequence[tuple[str, str, int, int | None]]) -> list[int]:
        """One pipelined round trip for a batch (the gateway's ledger batches land here)."""
        if len(items) == 1 or self._outage:
            return [self.add_spend(tenant_id, period, nanos, day) for tenant_id, period, nanos, day in items]
        calls = [(t, period, int(nanos), "" if day is None else day) for t, period, nanos, day in items]
        pipe = self._redis.pipeline(transaction=False)
        for args in calls:
            self._s_add(args=(self.prefix, *args), client=pipe)
        try:
            return [int(total) for total in pipe.execute()]
        except self._errors as exc:  # unknown how many landed: queue them all (an over-count at worst)
            self._fail(exc)
            return [self._queue("add", args, args[0], args[1], args[2]) for args in calls]

    def _queue(self, op: str, args: tuple[Any, ...], tenant_id: str, period: str, nanos: int) -> int:
        """Keep a spend for the replay; if the outage ended meanwhile, write it to Redis now."""
        with self._lock:
            if self._outage:
                self._pending.append((op, args))
                key = (tenant_id, period)
                self._outage_spend[key] = self._outage_spend.get(key, 0) + int(nanos)
                return self._seen.get(key, (0, 0))[0] + self._outage_spend[key]
        try:
            return int(self._call(self._s_add if op == "add" else self._s_finish, *args))
        except self._errors as exc:
            self._fail(exc)
            return self._queue(op, args, tenant_id, period, nanos)

    def spend(self, tenant_id: str, period: str) -> int:
        if not self._outage:
            try:
                return int(self._redis.get(f"{self.prefix}s:{tenant_id}:{period}") or 0)
            except self._errors as exc:
                self._fail(exc)
        with self._lock:
            key = (tenant_id, period)
            return self._seen.get(key, (0, 0))[0] + self._outage_spend.get(key, 0)

    def daily_spend(self, tenant_id: str, period: str) -> dict[int, int]:
        if not self._outage:
            try:
                raw = self._redis.hgetall(f"{self.prefix}d:{tenant_id}:{period}")
                return {int(k): int(v) for k, v in raw.items() if int(v)}
            except self._errors as exc:
                self._fail(exc)
        return {}

    # -- reservations --------------------------------------------------------------------------------
    def try_reserve(
        self,
        reservation_id: str,
        tenant_id: str,
        period: str,
        amount: int,
        limit: int,
        now: float,
        ttl_s: float,
        dims: Mapping[str, Any] | None = None,
    ) -> bool:
        if not self._outage:
            try:
                res = self._call(self._s_reserve, self._epoch or "", tenant_id, period, reservation_id,
                                 int(amount), int(limit), repr(float(now)), repr(float(ttl_s)))  # fmt: skip
            except self._errors as exc:
                self._fail(exc)
            else:
                code = int(res[0])
                if code >= 0:
                    with self._lock:
                        self._seen[(tenant_id, period)] = (int(res[1]), int(res[2]))
                        if code == 1:
                            self._holds[reservation_id] = _Hold(
                                tenant_id, period, int(amount), now + ttl_s, ttl_s
                            )
                    return code == 1
                if code == -1:  # the data set is gone or being rebuilt: refuse; the watcher rebuilds
                    self._wake.set()
                return False
        return self._local_reserve(reservation_id, tenant_id, period, int(amount), int(limit), now, ttl_s)

    def _local_reserve(
        self, rid: str, tenant_id: str, period: str, amount: int, limit: int, now: float, ttl_s: float
    ) -> bool:
        """Outage: this replica's share of what was left as last seen; never more."""
        with self._lock:
            seen = self._seen.get((tenant_id, period))
            if seen is None:
                return False
            spend, reserved = seen
            share = (limit - spend - reserved) // max(1, self._replicas)
            mine = self._outage_spend.get((tenant_id, period), 0) + sum(
                h.amount for r, h in self._holds.items() if h.tenant_id == tenant_id and r in self._local_ids
            )
            if mine + amount > share:
                return False
            self._holds[rid] = _Hold(tenant_id, period, amount, now + ttl_s, ttl_s)
            self._local_ids.add(rid)
            return True

    def reserved(self, tenant_id: str, now: float) -> int:
        if not self._outage:
            try:
                return int(self._call(self._s_reserved, tenant_id, repr(float(now))))
            except self._errors as exc:
                self._fail(exc)
        with self._lock:
            return sum(
                h.amount for h in self._holds.values() if h.tenant_id == tenant_id and h.expires_at > now
            )

    def begin_settle(self, reservation_id: str) -> SettleOutcome:
        if not self._outage and reservation_id not in self._local_ids:
            try:
                outcome = _OUTCOMES[int(self._call(self._s_begin, reservation_id))]
            except self._errors as exc:
                self._fail(exc)
            else:
                with self._lock:
                    hold = self._holds.get(reservation_id)
                    if hold is not None and outcome is SettleOutcome.OPEN:
                        hold.settling = True
                return outcome
        with self._lock:
            hold = self._holds.get(reservation_id)
            if hold is None:
                return SettleOutcome.UNKNOWN
            if hold.settling:
                return SettleOutcome.SETTLED
            hold.settling = True
            return SettleOutcome.OPEN

    def finish_settle(
        self, reservation_id: str, tenant_id: str, period: str, nanos: int, day: int | None
    ) -> None:
        args = (reservation_id, tenant_id, period, int(nanos), "" if day is None else day)
        with self._lock:
            self._holds.pop(reservation_id, None)
            local = reservation_id in self._local_ids
            self._local_ids.discard(reservation_id)
        if not self._outage:
            try:
                self._call(self._s_finish, *args)
                return
            except self._errors as exc:
                self._fail(exc)
        self._queue("add" if local else "finish", args[1:] if local else args, tenant_id, period, nanos)

    def abort_settle(self, reservation_id: str) -> None:
        with self._lock:
            hold = self._holds.get(reservation_id)
            if hold is not None:
                hold.settling = False
        if not self._outage and reservation_id not in self._local_ids:
            try:
                self._call(self._s_abort, reservation_id)
            except self._errors as exc:
                self._fail(exc)

    def release(self, reservation_id: str) -> bool:
        with self._lock:
            hold = self._holds.get(reservation_id)
            if hold is not None and hold.settling:
                return False
            self._holds.pop(reservation_id, None)
            local = reservation_id in self._local_ids
            self._local_ids.discard(reservation_id)
        if local:
            return True
        if not self._outage:
            try:
                return bool(int(self._call(self._s_release, reservation_id)))
            except self._errors as exc:
                self._fail(exc)
        with self._lock:
            if self._outage:
                self._pending.append(("release", (reservation_id,)))
                return hold is not None
        return self._release_in_redis(reservation_id, hold is not None)

    def release_many(self, reservation_ids: Sequence[str]) -> list[bool]:
        """One pipelined round trip for a batch (the gateway frees a ledger batch's holds at once)."""
        if len(reservation_ids) <= 1 or self._outage:
            return [self.release(rid) for rid in reservation_ids]
        results: dict[int, bool] = {}
        remote: list[tuple[int, str, bool]] = []
        with self._lock:
            for i, rid in enumerate(reservation_ids):
                hold = self._holds.get(rid)
                if hold is not None and hold.settling:
                    results[i] = False
                    continue
                self._holds.pop(rid, None)
                if rid in self._local_ids:
                    self._local_ids.discard(rid)
                    results[i] = True
                else:
                    remote.append((i, rid, hold is not None))
        if remote:
            pipe = self._redis.pipeline(transaction=False)
            for _, rid, _ in remote:
                self._s_release(args=(self.prefix, rid), client=pipe)
            try:
                outs: list[Any] = pipe.execute()
            except self._errors as exc:  # replayed later; a hold not freed errs on the safe side
                self._fail(exc)
                with self._lock:
                    self._pending.extend(("release", (rid,)) for _, rid, _ in remote)
                outs = [None] * len(remote)
            for (i, _, default), out in zip(remote, outs, strict=True):
                results[i] = default if out is None else bool(int(out))
        return [results[i] for i in range(len(reservation_ids))]

    def _release_in_redis(self, reservation_id: str, default: bool) -> bool:
        try:
            return bool(int(self._call(self._s_release, reservation_id)))
        except self._errors as exc:
            self._fail(exc)
            with self._lock:
                self._pending.append(("release", (reservation_id,)))
            return default

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=2)
        with contextlib.suppress(Exception):
            self._redis.zrem(f"{self.prefix}replicas", self.replica_id)
        self._redis.close()
