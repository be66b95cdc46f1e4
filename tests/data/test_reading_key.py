"""PostgreSQL: a household's readings come from the primary key's index alone (migration 0006).

The dashboard's chart reads one household's last 43 days. Readings are stored in arrival order,
one household's rows a page apart, so unless the index carries ``kwh`` each row is a heap page
read; ``scripts/bench_storage.py`` measures what that costs at 283 million rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Engine

from data.db import MIGRATIONS_DIR
from data.partitions import create_month_partition, ensure_reading_partitions
from tests.conftest import _postgres_database

pytestmark = pytest.mark.postgres

NOW = datetime(2025, 6, 20, tzinfo=UTC)


@pytest.fixture
def postgres() -> Iterator:
    yield from _postgres_database()


def fill(engine: Engine, households: int, days: int) -> None:
    """``households`` homes' readings for the ``days`` before ``NOW``, in arrival order."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO reading (household_id, interval_end, kwh, interval_minutes,"
                " received_at) SELECT 'h' || h, t, 0.1, 30, t FROM generate_series("
                " CAST(:first AS timestamptz), CAST(:last AS timestamptz), interval '30 minutes')"
                " AS t, generate_series(1, :households) AS h ORDER BY t, h"
            ),
            {"first": NOW - timedelta(days=days), "last": NOW, "households": households},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE reading"))


def chart_plan(engine: Engine) -> str:
    """The plan of the chart's read of one household, index paths only (on a table this small
    the planner would rather scan it whole)."""
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        connection.execute(text("SET LOCAL enable_bitmapscan = off"))
        lines = connection.execute(
            text(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT interval_end, kwh"
                " FROM reading WHERE household_id = 'h7' AND interval_end > :low"
                " AND interval_end <= :high"
            ),
            {"low": NOW - timedelta(days=43), "high": NOW},
        ).scalars()
        return "\n".join(lines)


def key_definitions(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indrelid"
                " WHERE i.indisprimary AND (c.oid = 'reading'::regclass OR c.oid IN"
                " (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'reading'::regclass))"
            )
        ).all()
    return dict(rows)


def test_the_charts_read_is_an_index_only_scan_of_each_month(postgres):
    # Whether the heap is then skipped depends on the visibility map (VACUUM, and no older
    # transaction open anywhere on the server), so the plan's shape is what is asserted.
    ensure_reading_partitions(engine=postgres.engine, now=NOW - timedelta(days=60), months_ahead=3)
    fill(postgres.engine, households=50, days=45)

    plan = chart_plan(postgres.engine)

    assert plan.count("Index Only Scan using") == 2, plan  # May and June
    assert "Index Scan using" not in plan


def test_every_partition_key_carries_kwh_including_a_month_made_later(postgres):
    ensure_reading_partitions(engine=postgres.engine, now=NOW, months_ahead=1)
    # A reading no month takes waits in the default partition; making its month moves it there
    # (a plain table attached as a partition), which must carry the same key.
    with postgres.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO reading VALUES ('h1', '2024-11-03T00:00:00+00', 0.2, 30,"
                " '2024-11-03T00:10:00+00')"
            )
        )
        assert create_month_partition(connection, datetime(2024, 11, 1).date())

    definitions = key_definitions(postgres.engine)

    assert {"reading", "reading_default", "reading_y2024m11", "reading_y2025m06"} <= set(
        definitions
    )
    for table, definition in definitions.items():
        assert definition.endswith("(household_id, interval_end) INCLUDE (kwh)"), table


def test_the_migration_goes_down_and_up_again(postgres):
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with postgres.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    assert not any("INCLUDE" in d for d in key_definitions(postgres.engine).values())

    with postgres.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    assert all("INCLUDE (kwh)" in d for d in key_definitions(postgres.engine).values())
