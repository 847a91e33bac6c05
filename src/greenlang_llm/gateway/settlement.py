"""How a finished request leaves the budget and the ledger: exactly once, one record per upstream call.

A request holds money from before its call until its record is durable: the reservation
(``GatewayService.reserve``, the worst case over the route) and, for a stream continued on
another provider, one extra hold per continuation (``continuation_budget.py``). A
:class:`Settlement` is that request's account, created with the reservation and finished by
whoever finishes the request (plain reply, completed stream, failed or abandoned stream) with
one of two calls:

- ``book(usage, provider, model_id)``: queue the ledger record(s) of what was produced. A
  continued stream's usage (a ``SplitUsage``) is booked as one record per upstream call, each
  under the provider that produced it: the first keeps the request id, the next ones are
  ``<request id>.2``, ``.3``, ... (the ledger keys idempotent writes by request id). The
  reservation is freed with the last record, and the continuation holds are queued right
  behind it: each is freed once, only after every record of the request is durable, so until
  then the budget counts the cost twice (safe, never over).
- ``release()``: nothing was produced (the call failed before any data): free the reservation
  and the holds unused.

Only the first of those calls does anything, so a request's finally-block may always call
``release()`` or ``book`` again. Waiting for durability is the caller's business: ``book(...,
durable=True)`` returns the future of the last record (``LedgerWriter.submit``), which
``GatewayService`` turns into a 503 when the record cannot be written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._types import SplitUsage, TokenUsage

if TYPE_CHECKING:
    import asyncio

    from ..cost_tracker import Reservation
    from .keys import VirtualKey
    from .ledger_writer import LedgerWriter
    from .metrics import Metrics

__all__ = ["Settlement"]


class Settlement:
    """One request's account: what it holds, booked or released exactly once."""

    __slots__ = ("_holds", "_ledger", "_metrics", "done", "key", "request_id", "reservation")

    def __init__(
        self,
        ledger: LedgerWriter,
        metrics: Metrics,
        key: VirtualKey,
        request_id: str,
        reservation: Reservation | None,
        holds: list[Reservation] | None = None,
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self.key = key
        self.request_id = request_id
        self.reservation = reservation
        """The request's worst case (None: a tenant without a hard budget holds nothing)."""
        self._holds = holds
        """The continuations' extra reservations: the live list their hook appends to."""
        self.done = False
        """Booked or released: every later call is a no-op."""

    def book(
        self,
        usage: TokenUsage,
        provider: str | None,
        model_id: str | None,
        *,
        durable: bool = False,
        dropped: tuple[str, ...] = (),
    ) -> asyncio.Future[None] | None:
        """Queue the request's record(s), the reservation with the last one, the holds behind it.

        ``durable``: return a future that completes when the last record is durable (or fails
        if it could not be written). None once the request was already booked or released.
        ``dropped``: the fields the serving provider could not honour and that were left out
        (what ``x-greenlang-dropped-params`` named), kept as the record's ``dropped_params``; a
        continued stream keeps them on its first record, the call whose response named them.
        """
        if self.done:
            return None
        self.done = True
        parts = usage.parts if isinstance(usage, SplitUsage) else ()
        future: asyncio.Future[None] | None = None
        reservation_queued = False
        try:
            if not parts:
                future = self._record(
                    usage, provider, model_id, self.request_id, self.reservation, durable, dropped
                )
                reservation_queued = True
            else:  # a continued stream: one record per upstream call
                last = len(parts) - 1
                for i, part in enumerate(parts):
                    future = self._record(
                        part.usage,
                        part.provider,
                        part.model_id,
                        self.request_id if i == 0 else f"{self.request_id}.{i + 1}",
                        self.reservation if i == last else None,
                        durable and i == last,
                        dropped if i == 0 else (),
                    )
                reservation_queued = True
        finally:
            # a record that could not be queued must not keep the request's money held until
            # the reservation's TTL: what was not handed over is released here
            if not reservation_queued and self.reservation is not None:
                self._ledger.submit(self.reservation, None)
            self._free_holds()
        return future

    def release(self) -> None:
        """Nothing to book: free the reservation and the continuation holds unused."""
        if self.done:
            return
        self.done = True
        if self.reservation is not None:
            self._ledger.submit(self.reservation, None)
        self._free_holds()

    def _record(
        self,
        usage: TokenUsage,
        provider: str | None,
        model_id: str | None,
        request_id: str,
        release: Reservation | None,
        durable: bool,
        dropped: tuple[str, ...] = (),
    ) -> asyncio.Future[None] | None:
        """Queue one upstream call's record (``CostTracker.track_usage``'s arguments), charging
        the key's token limit and the usage metrics as it goes."""
        key = self.key
        provider = provider or "unknown"
        key.charge_tokens(usage.total_tokens)
        self._metrics.record_usage(
            key.tenant, provider, usage.input_tokens, usage.output_tokens, usage.total_cost_usd
        )
        record: dict[str, Any] = {
            "provider": provider,
            "tenant_id": key.tenant,
            "agent_id": key.agent,
            "model_id": model_id or "",
            "usage": usage,
            "request_id": request_id,
        }
        if dropped:  # (the common case's record stays as it was)
            record["dropped_params"] = dropped
        return self._ledger.submit(release, record, durable)

    def _free_holds(self) -> None:
        """Queue the release of every continuation hold, once (the list is emptied)."""
        holds = self._holds
        if holds:
            held, holds[:] = list(holds), []
            for hold in held:
                self._ledger.submit(hold, None)
