"""Monthly partitions of ``reading`` on PostgreSQL, and retention of old readings on both databases.

On PostgreSQL ``reading`` is partitioned by range of ``interval_end`` (migration 0004): one
partition per calendar month in UTC, named ``reading_yYYYYmMM``, and ``reading_default`` for any
reading no month partition takes, so a row is never refused for want of a partition. The daily
maintenance job calls ``ensure_reading_partitions`` to create the coming months (and to move rows
that meanwhile landed in the default partition into their month), and ``drop_old_readings`` to
remove whole months past the retention: a ``DROP TABLE`` of the month instead of a
``DELETE`` of millions of rows and the vacuum after it. SQLite keeps one plain table; its
retention deletes the same months' rows, so both databases keep exactly the same readings.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine

from data.types import UTCDateTime

logger = logging.getLogger(__name__)

DEFAULT_PARTITION = "reading_default"
_MONTH_NAME = re.compile(r"^reading_y(\d{4})m(\d{2})$")


def month_start(when: datetime) -> date:
    """The first day of ``when``'s month in UTC."""
    utc = when.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def next_month(month: date, months: int = 1) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"reading_y{month.year:04d}m{month.month:02d}"


def _bound(month: date) -> str:
    return f"{month.isoformat()} 00:00:00+00"


def is_partitioned(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.exec_driver_sql(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass('reading')"
    ).scalar()
    return kind == "p"


def month_partitions(connection: Connection) -> dict[date, str]:
    """The month partitions of ``reading`` that exist, by their month (PostgreSQL)."""
    names = connection.exec_driver_sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass('reading')"
    ).scalars()
    found = {}
    for name in names:
        match = _MONTH_NAME.match(name)
        if match:
            found[date(int(match[1]), int(match[2]), 1)] = name
    return found


def create_month_partition(connection: Connection, month: date) -> bool:
    """Create ``month``'s partition if it is missing, taking its rows out of the default one.

    Returns whether a partition was created. PostgreSQL refuses to create a partition whose
    range already has rows in the default partition, so such rows are moved: the month is built
    as a plain table, filled from the default partition, then attached. Two maintenance runs
    that overlap take turns here (a transaction-level advisory lock), so the second finds the
    month already made instead of failing on it.
    """
    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('areawatch.reading.month'))")
    if month in month_partitions(connection):
        return False
    name, low, high = partition_name(month), _bound(month), _bound(next_month(month))
    in_range = f"interval_end >= '{low}' AND interval_end < '{high}'"
    waiting = connection.exec_driver_sql(
        f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE {in_range})"
    ).scalar()
    if not waiting:
        connection.exec_driver_sql(
            f"CREATE TABLE {name} PARTITION OF reading FOR VALUES FROM ('{low}') TO ('{high}')"
        )
        return True
    connection.exec_driver_sql(f"CREATE TABLE {name} (LIKE reading INCLUDING ALL)")
    moved = connection.exec_driver_sql(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE {in_range} RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved"
    ).rowcount
    connection.exec_driver_sql(
        f"ALTER TABLE reading ATTACH PARTITION {name} FOR VALUES FROM ('{low}') TO ('{high}')"
    )
    logger.info("reading partition %s created with %d rows from the default partition", name, moved)
    return True


@dataclass
class PartitionReport:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    rows_deleted: int = 0


def ensure_reading_partitions(
    *, engine: Engine, now: datetime, months_ahead: int = 3, keep_from: date | None = None
) -> PartitionReport:
    """Create the partitions of ``now``'s month and the ``months_ahead`` after it.

    Months that have readings waiting in the default partition get their partition too (and
    the rows moved into it), unless they are older than ``keep_from`` (retention will delete
    them). A no-op on SQLite and on an unpartitioned PostgreSQL ``reading``. Each month is its
    own short transaction, so the dashboard and ingest are held up for one month at a time.
    """
    report = PartitionReport()
    with engine.begin() as connection:
        if not is_partitioned(connection):
            return report
        months = {next_month(month_start(now), step) for step in range(months_ahead + 1)}
        waiting = connection.exec_driver_sql(
            f"SELECT DISTINCT date_trunc('month', interval_end AT TIME ZONE 'UTC')::date "
            f"FROM {DEFAULT_PARTITION}"
        ).scalars()
        months |= {month for month in waiting if keep_from is None or month >= keep_from}
    for month in sorted(months):
        with engine.begin() as connection:
            if create_month_partition(connection, month):
                report.created.append(partition_name(month))
    return report


def retention_start(now: datetime, retention_days: int) -> date:
    """The first month kept: the month holding ``now - retention_days``.

    Readings are kept at least ``retention_days``; whole months older than that go.
    """
    return month_start(now - timedelta(days=retention_days))


def drop_old_readings(*, engine: Engine, keep_from: date) -> PartitionReport:
    """Remove every reading whose interval ends before ``keep_from`` (a month's first day, UTC).

    PostgreSQL, partitioned: month partitions wholly before ``keep_from`` are dropped and the
    default partition's old rows deleted. SQLite (or unpartitioned): the rows are deleted.
    ``rows_deleted`` counts deleted rows only, not those of dropped partitions (counting a
    month of a large area would cost a scan of it).
    """
    report = PartitionReport()
    cutoff = datetime(keep_from.year, keep_from.month, 1, tzinfo=UTC)
    with engine.begin() as connection:
        partitioned = is_partitioned(connection)
        table = DEFAULT_PARTITION if partitioned else "reading"
        old_rows = text(f"DELETE FROM {table} WHERE interval_end < :cutoff").bindparams(
            bindparam("cutoff", type_=UTCDateTime())
        )
        report.rows_deleted = connection.execute(old_rows, {"cutoff": cutoff}).rowcount
        if partitioned:
            for month, name in sorted(month_partitions(connection).items()):
                if next_month(month) <= keep_from:
                    connection.exec_driver_sql(f"DROP TABLE {name}")
                    report.dropped.append(name)
    return report
