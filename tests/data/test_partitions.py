"""Readings by month: partitions on PostgreSQL, a plain table on SQLite, the same readings kept."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from data.ingest import ingest_readings
from data.partitions import (
    DEFAULT_PARTITION,
    drop_old_readings,
    ensure_reading_partitions,
    is_partitioned,
    month_partitions,
    retention_start,
)
from watch.app import App
from watch.clock import FrozenClock
from watch.jobs import maintain
from watch.settings import MaintenanceSettings, Settings

NOW = datetime(2025, 6, 20, tzinfo=UTC)
# One reading in the middle of each month from January to June 2025, and one at a month's edge:
# a reading ending at midnight on the 1st of March belongs to March.
ENDS = [datetime(2025, month, 15, 3, 30, tzinfo=UTC) for month in range(1, 7)] + [
    datetime(2025, 3, 1, tzinfo=UTC)
]


def load(engine, make_readings_file, ends, name="readings.csv"):
    rows = [["h1", end.isoformat(), f"{i / 10:.1f}"] for i, end in enumerate(ends)]
    return ingest_readings(engine=engine, path=make_readings_file(rows, name), now=NOW)


def stored_ends(engine) -> list[datetime]:
    with engine.connect() as connection:
        ends = connection.exec_driver_sql("SELECT interval_end FROM reading").scalars().all()
    return sorted(pd.Timestamp(end).tz_localize(None).to_pydatetime() for end in ends)


def naive(ends) -> list[datetime]:
    return sorted(end.replace(tzinfo=None) for end in ends)


def partition_of(engine) -> dict[datetime, str]:
    """PostgreSQL: which partition each stored reading is in."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT interval_end, tableoid::regclass::text FROM reading"
        ).all()
    return {end.astimezone(UTC): table.split(".")[-1] for end, table in rows}


def test_on_postgresql_reading_is_partitioned_and_on_sqlite_a_plain_table(engine):
    with engine.connect() as connection:
        assert is_partitioned(connection) == (engine.dialect.name == "postgresql")


def test_readings_across_several_months_go_in_and_come_back(
    engine, make_household, make_readings_file
):
    make_household("h1")
    ensure_reading_partitions(engine=engine, now=datetime(2025, 1, 1, tzinfo=UTC), months_ahead=6)

    report = load(engine, make_readings_file, ENDS)

    assert report.rows_inserted == len(ENDS)
    assert stored_ends(engine) == naive(ENDS)
    if engine.dialect.name == "postgresql":
        where = partition_of(engine)
        assert {where[end] for end in ENDS} == {f"reading_y2025m0{m}" for m in range(1, 7)}
        assert where[datetime(2025, 3, 1, tzinfo=UTC)] == "reading_y2025m03"


def test_a_reading_outside_every_month_partition_lands_in_the_default_one(
    engine, make_household, make_readings_file
):
    make_household("h1")
    ensure_reading_partitions(engine=engine, now=NOW, months_ahead=1)
    stray = datetime(2019, 2, 3, 4, 30, tzinfo=UTC)

    report = load(engine, make_readings_file, [stray, NOW - timedelta(hours=1)])

    assert report.rows_inserted == 2
    assert stored_ends(engine) == naive([stray, NOW - timedelta(hours=1)])
    if engine.dialect.name == "postgresql":
        assert partition_of(engine)[stray] == DEFAULT_PARTITION
        assert partition_of(engine)[NOW - timedelta(hours=1)] == "reading_y2025m06"


def test_creating_a_month_moves_its_readings_out_of_the_default_partition(
    engine, make_household, make_readings_file
):
    make_household("h1")
    load(engine, make_readings_file, ENDS)  # no month partitions yet: all in the default

    report = ensure_reading_partitions(engine=engine, now=NOW, months_ahead=2)

    assert stored_ends(engine) == naive(ENDS)
    if engine.dialect.name == "postgresql":
        assert set(partition_of(engine).values()) == {f"reading_y2025m0{m}" for m in range(1, 7)}
        assert report.created == [f"reading_y2025m0{m}" for m in range(1, 9)]
        with engine.connect() as connection:
            assert sorted(month_partitions(connection)) == [date(2025, m, 1) for m in range(1, 9)]
    else:
        assert report.created == []
    # A second run has nothing to do.
    assert ensure_reading_partitions(engine=engine, now=NOW, months_ahead=2).created == []


@pytest.mark.parametrize("partitions_first", [True, False])
def test_retention_removes_exactly_the_months_before_the_cutoff(
    engine, make_household, make_readings_file, partitions_first
):
    make_household("h1")
    if partitions_first:
        ensure_reading_partitions(engine=engine, now=datetime(2025, 1, 1, tzinfo=UTC))
    load(engine, make_readings_file, ENDS)
    # 100 days before 20 June is 12 March: March is the first month kept, whole.
    keep_from = retention_start(NOW, 100)

    report = drop_old_readings(engine=engine, keep_from=keep_from)

    assert keep_from == date(2025, 3, 1)
    assert stored_ends(engine) == naive([end for end in ENDS if end.month >= 3])
    if engine.dialect.name == "postgresql" and partitions_first:
        assert report.dropped == ["reading_y2025m01", "reading_y2025m02"]
        with engine.connect() as connection:
            assert min(month_partitions(connection)) == date(2025, 3, 1)
    else:
        assert report.rows_deleted == 2


def test_daily_maintenance_creates_coming_months_and_applies_the_readings_retention(
    database, make_household, make_readings_file
):
    make_household("h1")
    load(database.engine, make_readings_file, ENDS)
    settings = Settings(
        database_url=database.url,
        maintenance=MaintenanceSettings(readings_retention_days=100),
    )
    app = App.from_settings(settings, clock=FrozenClock(NOW), channels={})

    report = maintain(app)

    assert stored_ends(database.engine) == naive([end for end in ENDS if end.month >= 3])
    if database.backend == "postgres":
        # January and February were waiting in the default partition: past the retention, they
        # get no partition of their own and are deleted from there.
        assert report.reading_partitions_created == tuple(
            f"reading_y2025m{m:02d}" for m in range(3, 10)
        )
        assert report.readings_deleted == 2
        with database.engine.connect() as connection:
            left = connection.execute(text(f"SELECT COUNT(*) FROM {DEFAULT_PARTITION}")).scalar()
        assert left == 0
    else:
        assert report.readings_deleted == 2
    app.engine.dispose()


def test_without_a_readings_retention_maintenance_keeps_every_reading(
    database, make_household, make_readings_file
):
    make_household("h1")
    load(database.engine, make_readings_file, ENDS)
    settings = Settings(database_url=database.url)
    app = App.from_settings(settings, clock=FrozenClock(NOW + timedelta(days=3650)), channels={})

    report = maintain(app)

    assert report.readings_deleted == 0 and report.reading_partitions_dropped == ()
    assert stored_ends(database.engine) == naive(ENDS)
    app.engine.dispose()


def test_init_creates_this_month_and_the_coming_ones_so_readings_skip_the_default(
    database, make_household, make_readings_file
):
    settings = Settings(
        database_url=database.url,
        maintenance=MaintenanceSettings(reading_partitions_ahead_months=2),
    )
    app = App.from_settings(settings, clock=FrozenClock(NOW), channels={})
    app.init_db()  # the schema is there already: init upgrades nothing, but adds the months
    make_household("h1")
    ends = [datetime(2025, 6, 1, 0, 30, tzinfo=UTC), NOW - timedelta(days=1)]
    load(database.engine, make_readings_file, ends)

    if database.backend == "postgres":
        with database.engine.connect() as connection:
            assert sorted(month_partitions(connection)) == [date(2025, m, 1) for m in (6, 7, 8)]
        assert set(partition_of(database.engine).values()) == {"reading_y2025m06"}
    assert stored_ends(database.engine) == naive(ends)
    app.engine.dispose()


def test_a_large_load_refreshes_the_planner_statistics_of_the_months_it_wrote(
    engine, make_household, make_readings_file, monkeypatch
):
    """Detection reads a freshly loaded month at once; without statistics the planner scans it
    whole for every 500 households (see ``_refresh_statistics``)."""
    import data.ingest.readings as readings

    make_household("h1")
    ensure_reading_partitions(engine=engine, now=datetime(2025, 1, 1, tzinfo=UTC), months_ahead=6)
    stray = datetime(2019, 2, 3, 4, 30, tzinfo=UTC)

    def analysed() -> set[str]:
        # ANALYZE sets pg_class.reltuples in its own transaction; -1 means never analysed.
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass('reading') AND c.reltuples >= 0"
            ).scalars()
            return set(rows)

    load(engine, make_readings_file, ENDS[:2], name="small.csv")  # under the threshold
    monkeypatch.setattr(readings, "ANALYZE_AFTER_ROWS", 3)
    report = load(engine, make_readings_file, [ENDS[2], ENDS[3], stray], name="large.csv")

    assert report.rows_inserted == 3
    if engine.dialect.name == "postgresql":
        assert analysed() == {"reading_y2025m03", "reading_y2025m04", DEFAULT_PARTITION}
