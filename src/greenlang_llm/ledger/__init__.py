"""The cost ledger: durable usage records behind one storage interface.

``open_ledger(url)`` picks the backend from a ledger URL (see ``url.py``):
embedded SQLite (default) or PostgreSQL (shared by replicas). ``CostTracker``
is the public face; this package is the storage underneath it.
"""

from __future__ import annotations

import os

from .base import LedgerStorage
from .records import BudgetRecord, UsageRecord
from .url import LedgerURL, parse_ledger_url, resolve_ledger_url

__all__ = [
    "BudgetRecord",
    "LedgerStorage",
    "LedgerURL",
    "UsageRecord",
    "open_ledger",
    "parse_ledger_url",
    "resolve_ledger_url",
]


def open_ledger(storage: str | os.PathLike[str] | None = None) -> LedgerStorage:
    """Open (creating and migrating as needed) the ledger a URL or path names."""
    parsed = parse_ledger_url(resolve_ledger_url(storage))
    if parsed.kind == "sqlite":
        from .sqlite_backend import SQLiteLedger

        return SQLiteLedger(
            parsed.path,
            synchronous=parsed.options.get("synchronous", "normal"),
            timeout=float(parsed.options.get("timeout", "30")),
        )
    from .postgres_backend import PostgresLedger

    return PostgresLedger(parsed.dsn, schema=parsed.options.get("schema"))
