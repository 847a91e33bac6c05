"""Schema versions of the ledger, applied in order inside one transaction each.

A ``schema_version`` table records what was applied, so opening an old ledger
upgrades it and opening a current one does nothing. Each step is written once
per dialect (SQLite, PostgreSQL); they differ only in the id column type and
the rollups' clustering.
A new version is appended here, never edited in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["MIGRATIONS", "Migration", "apply_pending", "latest_version"]


# Rollup rows live in their primary-key b-tree (no separate rowid table): one page
# touched per upsert instead of two.
_SQLITE_CLUSTERED = " WITHOUT ROWID"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


def _v1(id_column: str, clustered: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE usage_records (
            id {id_column},
            ts_us BIGINT NOT NULL,
            provider TEXT NOT NULL,
            tenant_id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            cache_read_tokens BIGINT NOT NULL DEFAULT 0,
            cache_write_tokens BIGINT NOT NULL DEFAULT 0,
            input_cost_nanos BIGINT NOT NULL,
            output_cost_nanos BIGINT NOT NULL,
            total_cost_nanos BIGINT NOT NULL,
            estimated SMALLINT NOT NULL DEFAULT 0,
            request_id TEXT UNIQUE
        )""",
        "CREATE INDEX ix_usage_tenant_ts ON usage_records (tenant_id, ts_us)",
        "CREATE INDEX ix_usage_ts ON usage_records (ts_us)",
        # Per-hour rollup maintained in the same transaction as each insert: reports over
        # millions of rows read thousands of rollup rows plus the two partial edge hours.
        """CREATE TABLE usage_hourly (
            hour_us BIGINT NOT NULL,
            tenant_id TEXT NOT NULL,
            provider TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            requests BIGINT NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            cost_nanos BIGINT NOT NULL,
            PRIMARY KEY (hour_us, tenant_id, provider, agent_id, model_id)
        )""" + clustered,
        """CREATE TABLE budgets (
            tenant_id TEXT PRIMARY KEY,
            limit_nanos BIGINT NOT NULL,
            thresholds TEXT NOT NULL,
            hard_limit SMALLINT NOT NULL,
            updated_us BIGINT NOT NULL
        )""",
        """CREATE TABLE budget_alerts (
            tenant_id TEXT NOT NULL,
            period TEXT NOT NULL,
            threshold TEXT NOT NULL,
            fired_us BIGINT NOT NULL,
            cost_nanos BIGINT NOT NULL,
            PRIMARY KEY (tenant_id, period, threshold)
        )""",
    )


def _v2(clustered: str) -> tuple[str, ...]:
    return (
        # Per-day rollup: month-long reports read ~30 rows per dimension combination.
        """CREATE TABLE usage_daily (
            day_us BIGINT NOT NULL,
            tenant_id TEXT NOT NULL,
            provider TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            requests BIGINT NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            cost_nanos BIGINT NOT NULL,
            PRIMARY KEY (day_us, tenant_id, provider, agent_id, model_id)
        )""" + clustered,
        """INSERT INTO usage_daily SELECT hour_us - (hour_us % 86400000000), tenant_id, provider,
            agent_id, model_id, SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(total_tokens),
            SUM(cost_nanos) FROM usage_hourly
            GROUP BY hour_us - (hour_us % 86400000000), tenant_id, provider, agent_id, model_id""",
    )


# The fields the serving provider could not honour and the gateway left out, comma-separated
# (NULL when none, as every row written before this version reads).
_V3 = ("ALTER TABLE usage_records ADD COLUMN dropped_params TEXT",)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="usage records, hourly rollup, budgets, fired alerts",
        sqlite=_v1("INTEGER PRIMARY KEY", _SQLITE_CLUSTERED),
        postgresql=_v1("BIGSERIAL PRIMARY KEY", ""),
    ),
    Migration(version=2, description="daily rollup", sqlite=_v2(_SQLITE_CLUSTERED), postgresql=_v2("")),
    Migration(version=3, description="usage_records.dropped_params", sqlite=_V3, postgresql=_V3),
)


def latest_version() -> int:
    return MIGRATIONS[-1].version


def apply_pending(cursor: Any, dialect: Literal["sqlite", "postgresql"]) -> None:
    """Run every migration newer than the database's ``schema_version``, recording each.

    The caller holds the transaction (and, on PostgreSQL, the migration lock), so concurrent
    starts migrate once. ``cursor`` is a DB-API cursor whose ``execute`` returns itself
    (sqlite3 and psycopg 3 both do)."""
    record = f"INSERT INTO schema_version (version) VALUES ({'?' if dialect == 'sqlite' else '%s'})"
    cursor.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = cursor.execute("SELECT MAX(version) FROM schema_version").fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    for migration in MIGRATIONS:
        if migration.version > current:
            for statement in getattr(migration, dialect):
                cursor.execute(statement)
            cursor.execute(record, (migration.version,))
