"""The dashboard's 14-day chart query against a full-size `reading` table on PostgreSQL.

Issue 7 asks that the household chart stay under 100 ms with a year of 100,000 households
(1.75 billion readings). The chart (``watch.web.queries.usage_with_band``) reads one household's
last 14 days plus the 29 days its usual band is made from: about 2,064 rows from the two or
three month partitions those 43 days span. Partition pruning happens when the query is planned
(its time range is constants), so the other months' partitions are never read; what decides the
time is how the rows of one household lie in the months it does read.

This script builds, in a scratch schema, ``reading`` as migration 0005 left it (the key before
0006 made it carry ``kwh``), with
``--months`` (default 12) month partitions of which the last ``--filled`` (default 2) are full:
every household, every half-hour, inserted in time order as ingest writes them (so one
household's rows are spread one per heap page, the worst case for a by-household read). The
filled months are built as plain tables, indexed, then attached, which is the end state ingest
reaches, only faster. It then times, on samples of households not read before and with the
operating system's page cache dropped when it may be (``/proc/sys/vm/drop_caches``, needs
root), and again warm:

- ``query``: the chart's SQL alone;
- ``chart``: the whole ``usage_with_band``;

first with that key, then with a covering index ``(household_id, interval_end) INCLUDE (kwh)``
built beside it, which is the key migration 0006 makes (an index-only scan reads the
household's rows from a few adjacent index pages instead of one heap page a row).

Example (about 30 GB of disk and 20-30 minutes for 100k households and 2 filled months)::

    python scripts/bench_storage.py --households 100000 \\
        --postgres-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from data.db import init_db, make_engine, normalise_url
from data.partitions import month_partitions, next_month, partition_name
from data.tables import Household
from watch.web.queries import chart_range, chart_readings, usage_with_band

SLOT = timedelta(minutes=30)
#: The schema with the key as it was before migration 0006, to compare the two.
OLD_KEY_REVISION = "0005"


def household_id(number: int) -> str:
    return f"h{number:07d}"


def months_before(month: date, count: int) -> date:
    for _ in range(count):
        month = date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)
    return month


def drop_page_cache() -> bool:
    """Drop the OS page cache so the next reads come from disk; False where not allowed."""
    try:
        with open("/proc/sys/vm/drop_caches", "w") as handle:  # noqa: PTH123
            handle.write("3\n")
        return True
    except OSError:
        return False


def fill_month(engine: Engine, month: date, households: int) -> dict:
    """One month of every household's readings, in time order, built beside ``reading`` and
    attached as its partition (the migrations' primary key, added after the load)."""
    name = partition_name(month)
    start = datetime(month.year, month.month, month.day, tzinfo=UTC)
    end = datetime(*next_month(month).timetuple()[:3], tzinfo=UTC)
    began = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE TABLE "{name}" (LIKE reading INCLUDING DEFAULTS)'))
    rows = 0
    moment = start  # a month's partition holds interval ends from its first midnight
    # One statement a half-hour: the heap ends up in arrival order, one household's rows
    # scattered one per page, without sorting 144 million rows.
    while moment < end:
        with engine.begin() as connection:
            connection.execute(
                text(
                    f'INSERT INTO "{name}" (household_id, interval_end, kwh, interval_minutes,'
                    " received_at) SELECT 'h' || lpad(h::text, 7, '0'), :at,"
                    " round((0.04 + 0.3 * random() * random())::numeric, 3)::float8, 30,"
                    " :at + interval '7 minutes' FROM generate_series(0, :last) AS h"
                ),
                {"at": moment, "last": households - 1},
            )
        rows += households
        moment += SLOT
    loaded = time.perf_counter() - began
    with engine.begin() as connection:
        connection.execute(
            text(f'ALTER TABLE "{name}" ADD PRIMARY KEY (household_id, interval_end)')
        )
        connection.execute(
            text(
                f'ALTER TABLE reading ATTACH PARTITION "{name}" FOR VALUES FROM'
                f" ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'VACUUM ANALYZE "{name}"'))
    return {
        "month": str(month),
        "rows": rows,
        "load_s": loaded,
        "total_s": time.perf_counter() - began,
    }


def empty_months(engine: Engine, first: date, count: int) -> None:
    with engine.begin() as connection:
        existing = month_partitions(connection)
        month = first
        for _ in range(count):
            if month not in existing:
                low = datetime(*month.timetuple()[:3], tzinfo=UTC).isoformat()
                high = datetime(*next_month(month).timetuple()[:3], tzinfo=UTC).isoformat()
                connection.execute(
                    text(
                        f'CREATE TABLE "{partition_name(month)}" PARTITION OF reading'
                        f" FOR VALUES FROM ('{low}') TO ('{high}')"
                    )
                )
            month = next_month(month)


def sizes(engine: Engine) -> dict:
    with engine.connect() as connection:
        heap, index = connection.execute(
            text(
                "SELECT sum(pg_table_size(c.oid)), sum(pg_indexes_size(c.oid)) FROM pg_inherits i"
                " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'reading'::regclass"
            )
        ).one()
    return {"heap_gb": int(heap) / 1e9, "indexes_gb": int(index) / 1e9}


def timed(engine: Engine, numbers: list[int], now: datetime, whole_chart: bool) -> dict:
    """Milliseconds per household for the query alone, or the whole chart."""
    spent, rows = [], 0
    with Session(engine) as session:
        for number in numbers:
            household = Household(id=household_id(number), timezone="Asia/Tokyo", name="-")
            began = time.perf_counter()
            if whole_chart:
                usage_with_band(session, household, now)
            else:
                rows = len(chart_readings(session, household.id, now))
            spent.append((time.perf_counter() - began) * 1000)
    figures = {"median_ms": statistics.median(spent), "p95_ms": float(np.percentile(spent, 95))}
    return figures | ({} if whole_chart else {"rows": rows})


def plan_of(engine: Engine, number: int, now: datetime) -> list[str]:
    low, end = chart_range(now)
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "EXPLAIN (ANALYZE, BUFFERS) SELECT interval_end, kwh FROM reading"
                    " WHERE household_id = :h AND interval_end > :low AND interval_end <= :high"
                ),
                {"h": household_id(number), "low": low, "high": end},
            ).scalars()
        )


def measure(engine: Engine, args: argparse.Namespace, now: datetime, pool: list[int]) -> dict:
    """Cold (the page cache dropped, households not read before), then warm (the same
    households again at once): one sample for the query alone, another for the whole chart."""
    query_sample = [pool.pop() for _ in range(args.samples)]
    chart_sample = [pool.pop() for _ in range(args.samples)]
    dropped = drop_page_cache()
    figures = {
        "page_cache_dropped": dropped,
        "query_cold": timed(engine, query_sample, now, whole_chart=False),
        "query_warm": timed(engine, query_sample, now, whole_chart=False),
    }
    drop_page_cache()
    return figures | {
        "chart_cold": timed(engine, chart_sample, now, whole_chart=True),
        "chart_warm": timed(engine, chart_sample, now, whole_chart=True),
        "plan_warm": plan_of(engine, query_sample[-1], now),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12, help="month partitions in all")
    parser.add_argument("--filled", type=int, default=2, help="the last months, full")
    parser.add_argument("--samples", type=int, default=200, help="households per measurement")
    parser.add_argument("--postgres-url", required=True)
    parser.add_argument("--keep", action="store_true", help="keep the scratch schema")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON too")
    args = parser.parse_args()

    schema = f"bench_storage_{uuid.uuid4().hex[:8]}"
    admin = make_engine(args.postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(f"{normalise_url(args.postgres_url)}?options=-csearch_path%3D{schema}")
    try:
        init_db(engine, revision=OLD_KEY_REVISION)
        last = date(2027, 2, 1)
        first, filled_from = (
            months_before(last, args.months - 1),
            months_before(last, args.filled - 1),
        )
        result: dict = {"households": args.households, "months": args.months}
        fills = []
        month = filled_from
        while month <= last:
            fills.append(fill_month(engine, month, args.households))
            print(json.dumps(fills[-1]), flush=True)
            month = next_month(month)
        empty_months(engine, first, args.months)
        result["fills"] = fills
        result["rows"] = sum(f["rows"] for f in fills)
        result["size_primary_key"] = sizes(engine)
        now = datetime(*next_month(last).timetuple()[:3], tzinfo=UTC) - timedelta(minutes=20)
        pool = random.Random(11).sample(range(args.households), 4 * args.samples)
        result["primary_key"] = measure(engine, args, now, pool)
        print(json.dumps(result["primary_key"], indent=1), flush=True)
        began = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for month_name in [partition_name(date.fromisoformat(f["month"])) for f in fills]:
                connection.execute(
                    text(
                        f'CREATE UNIQUE INDEX "{month_name}_covering" ON "{month_name}"'
                        " (household_id, interval_end) INCLUDE (kwh)"
                    )
                )
                connection.execute(text(f'VACUUM ANALYZE "{month_name}"'))
        result["covering_build_s"] = time.perf_counter() - began
        result["size_covering"] = sizes(engine)
        result["covering"] = measure(engine, args, now, pool)
        print(json.dumps(result["covering"], indent=1), flush=True)
    finally:
        engine.dispose()
        if not args.keep:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    summary = {k: v for k, v in result.items() if k not in ("primary_key", "covering")}
    for variant in ("primary_key", "covering"):
        summary[variant] = {k: v for k, v in result[variant].items() if k != "plan_warm"}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
