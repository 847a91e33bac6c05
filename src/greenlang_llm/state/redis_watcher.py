"""The budget state's background side: heartbeat, data-loss rebuild, outage recovery.

A mixin of ``RedisBudgetState`` (kept apart so each file reads as one idea): a daemon
thread wakes every ``watch_interval`` seconds (or at once when a request found the data
set gone), renews this replica's heartbeat, counts the live replicas, refreshes the
spend and holds last seen (the outage share is computed from them), rebuilds the
month-to-date view from the ledger when Redis lost it, adopts another replica's
rebuild, and replays what was recorded while Redis was unreachable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Hold", "RedisStateWatcher"]

log = logging.getLogger("greenlang_llm.state.redis")


@dataclass(slots=True)
class Hold:
    """One of this replica's open reservations, remembered so it can be put back into Redis."""

    tenant_id: str
    period: str
    amount: int
    expires_at: float
    ttl_s: float
    settling: bool = False


class RedisStateWatcher:
    # provided by RedisBudgetState
    _redis: Any
    _errors: tuple[type[BaseException], ...]
    prefix: str
    replica_id: str
    watch_interval: float
    _lock: threading.Lock
    _epoch: str | None
    _loader: Callable[[], None] | None
    _holds: dict[str, Hold]
    _seen: dict[tuple[str, str], tuple[int, int]]
    _replicas: int
    _outage: bool
    _pending: list[tuple[str, tuple[Any, ...]]]
    _outage_spend: dict[tuple[str, str], int]
    _local_ids: set[str]
    _stop: threading.Event
    _wake: threading.Event
    _lost_seen: bool
    _s_heartbeat: Any
    _s_add: Any
    _s_finish: Any
    _s_release: Any
    _s_restore: Any

    def _call(self, script: Any, *args: Any) -> Any:
        raise NotImplementedError

    def _fail(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _adopt(self, epoch: str) -> None:
        raise NotImplementedError

    def _restore(self, reservation_id: str, h: Hold) -> None:
        """Put one of this replica's holds (back) into Redis."""
        self._call(self._s_restore, h.tenant_id, reservation_id, h.amount, h.expires_at, h.ttl_s,
                   "1" if h.settling else "0")  # fmt: skip

    def _watch(self) -> None:
        while True:
            self._wake.wait(self.watch_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._check_epoch()
            except Exception:  # the watcher must survive anything; the next round retries
                log.exception("Redis budget state watcher failed")

    def _check_epoch(self) -> None:
        try:
            epoch, replicas = self._call(
                self._s_heartbeat, self.replica_id, max(3.0, 10 * self.watch_interval)
            )
        except self._errors as exc:
            self._fail(exc)
            return
        self._replicas = max(1, int(replicas))
        if self._outage:
            self._recover()
        if epoch is not None and epoch == self._epoch:
            self._refresh_seen()
        if epoch is None:
            self._lost_seen = True
            self._rebuild()
        elif epoch != self._epoch:
            self._adopt(epoch)
        if epoch is not None:
            self._lost_seen = False

    def _refresh_seen(self) -> None:
        """Keep the last seen (spend, reserved) of known tenants current: the outage share uses it."""
        with self._lock:
            keys = list(self._seen)
        if not keys:
            return
        pipe = self._redis.pipeline(transaction=False)
        for tenant, period in keys:
            pipe.get(f"{self.prefix}s:{tenant}:{period}")
            pipe.get(f"{self.prefix}hr:{tenant}")  # may still include expired holds: errs high
        try:
            values = pipe.execute()
        except self._errors as exc:
            self._fail(exc)
            return
        with self._lock:
            for i, key in enumerate(keys):
                self._seen[key] = (int(values[2 * i] or 0), int(values[2 * i + 1] or 0))

    def _rebuild(self) -> None:
        """Redis lost the data set: one replica (under a short lock) rebuilds it from the ledger."""
        r, p = self._redis, self.prefix
        r.set(f"{p}lost", "1", ex=60)
        if self._loader is None:
            log.error("Redis lost the budget state and no ledger loader is bound: refusing reservations")
            return
        if not r.set(f"{p}rebuild", self.replica_id, nx=True, px=30_000):
            return  # another replica is rebuilding; we adopt its epoch on the next round
        log.warning("Redis lost the budget state: rebuilding month-to-date totals from the ledger")
        try:
            self._loader()  # reads the ledger, then calls load_spend()
        finally:
            r.delete(f"{p}rebuild")

    def _recover(self) -> None:
        """Redis answers again: replay what was recorded meanwhile, hand local holds to Redis."""
        scripts = {"add": self._s_add, "finish": self._s_finish, "release": self._s_release}
        restored: set[str] = set()
        replayed = 0
        while True:  # until nothing new was queued while we replayed (checked under the lock)
            with self._lock:
                pending, self._pending = self._pending, []
                local = [(rid, self._holds[rid]) for rid in self._local_ids
                         if rid in self._holds and rid not in restored]  # fmt: skip
                if not pending and not local:
                    self._outage_spend.clear()
                    self._local_ids.clear()
                    self._outage = False
                    break
            done = 0
            try:
                for op, args in pending:
                    self._call(scripts[op], *args)
                    done += 1
                for rid, h in local:
                    self._restore(rid, h)
                    restored.add(rid)
            except self._errors:
                with self._lock:
                    self._pending[:0] = pending[done:]
                return
            replayed += len(pending)
        log.warning("Redis answers again: %d queued writes replayed; budgets are shared again", replayed)
