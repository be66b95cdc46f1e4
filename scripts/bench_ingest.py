"""Time readings ingestion: a first load and a re-load (the idempotent path) of one file.

    python scripts/bench_ingest.py --rows 1000000
    python scripts/bench_ingest.py --rows 1000000 --postgres-url postgresql://postgres@127.0.0.1:5432/test

SQLite runs on a temporary file; PostgreSQL (``--postgres-url`` or AREAWATCH_TEST_POSTGRES_URL)
in a fresh schema that is dropped afterwards. ``--database-url`` adds any other database
(it must be empty; it is migrated, not cleaned).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

from data.db import init_db, make_engine, normalise_url
from data.ingest import ingest_households, ingest_readings
from data.partitions import ensure_reading_partitions

NOW = datetime(2025, 1, 6, tzinfo=UTC)


def write_files(folder: Path, rows: int, households: int) -> tuple[Path, Path]:
    per_household = -(-rows // households)
    ids = [f"h{i:05d}" for i in range(households)]
    roster = folder / "households.csv"
    pd.DataFrame({"household_id": ids, "name": "Resident", "timezone": "Asia/Tokyo"}).to_csv(
        roster, index=False
    )
    ends = pd.date_range(end=NOW, periods=per_household, freq="30min")
    stamps = ends.tz_convert("Asia/Tokyo").strftime("%Y-%m-%dT%H:%M:%S+09:00").to_numpy()
    rng = np.random.default_rng(1)
    readings = folder / "readings.csv"
    pd.DataFrame(
        {
            "household_id": np.repeat(ids, per_household)[:rows],
            "timestamp": np.tile(stamps, households)[:rows],
            "kwh": (rng.integers(0, 3000, rows) / 1000),
        }
    ).to_csv(readings, index=False)
    return roster, readings


def cpu_seconds(engine) -> tuple[float, float]:  # noqa: ANN001
    """CPU used so far by this process, and by this engine's PostgreSQL backends (same host).

    On a shared machine the wall time depends on the others' load; the CPU time much less.
    The server's share is read from /proc, so it is only known when PostgreSQL runs here.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    server = 0.0
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            name = connection.exec_driver_sql("SHOW application_name").scalar()
            pids = connection.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %(name)s",
                {"name": name},
            ).scalars()
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    return usage.ru_utime + usage.ru_stime, float("nan")
                server += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return usage.ru_utime + usage.ru_stime, server


def bench(label: str, url: str, roster: Path, readings: Path, rows: int, chunk_rows: int) -> None:
    engine = make_engine(url)
    init_db(engine)
    # As daily maintenance would have: the months of the readings get their partitions.
    ensure_reading_partitions(engine=engine, now=NOW - timedelta(days=60), months_ahead=3)
    ingest_households(engine=engine, path=roster, now=NOW)
    for run in ("first load", "re-load"):
        client_before, server_before = cpu_seconds(engine)
        started = time.perf_counter()
        report = ingest_readings(engine=engine, path=readings, now=NOW, chunk_rows=chunk_rows)
        seconds = time.perf_counter() - started
        client_after, server_after = cpu_seconds(engine)
        client, server = client_after - client_before, server_after - server_before
        print(
            f"{label:10s} {run:10s} {rows:>9,d} rows {seconds:7.2f} s"
            f" {rows / seconds:>10,.0f} rows/s"
            f"  (inserted {report.rows_inserted:,d}, unchanged {report.rows_unchanged:,d},"
            f" quarantined {report.rows_quarantined:,d})"
            f"  cpu: client {client:.2f} s, server {server:.2f} s,"
            f" {rows / (client + server):,.0f} rows per cpu-second; load {os.getloadavg()[0]:.2f}"
        )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--households", type=int, default=1_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--postgres-url", default=os.environ.get("AREAWATCH_TEST_POSTGRES_URL"))
    parser.add_argument("--database-url", action="append", default=[])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        started = time.perf_counter()
        roster, readings = write_files(folder, args.rows, args.households)
        size = readings.stat().st_size / 1e6
        seconds = time.perf_counter() - started
        print(f"wrote {args.rows:,d} readings ({size:.0f} MB) in {seconds:.1f} s")
        bench(
            "sqlite",
            f"sqlite:///{folder / 'bench.db'}",
            roster,
            readings,
            args.rows,
            args.chunk_rows,
        )
        if args.postgres_url:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = make_engine(args.postgres_url)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                url = (
                    f"{normalise_url(args.postgres_url)}?options=-csearch_path%3D{schema}"
                    f"&application_name={schema}"
                )
                bench("postgres", url, roster, readings, args.rows, args.chunk_rows)
            finally:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
        for url in args.database_url:
            bench(url.split(":", 1)[0], url, roster, readings, args.rows, args.chunk_rows)


if __name__ == "__main__":
    main()
