"""Detection on the local engine against Dask with 1, 2, ... worker processes on this machine.

Generates ``--households`` synthetic homes (seeded, vectorised: standby with fridge noise, use by
day, a tenth going quiet for their last 20 hours) with ``--days`` of 30-minute readings, loads
them once into a SQLite file, and then, on a fresh copy of that file for each engine, times one
``run_detection`` over all of it (the onboarding backfill: every slot of every household is
scored). Each Dask cluster is a ``LocalCluster`` of single-threaded worker processes, started
and warmed up before the clock starts. The local run also reports how much of its time was
scoring and how much the coordinator's database work (the part no worker can take over). The
runs must agree: the script fails if findings, incidents or checkpoints differ.

Example::

    python scripts/bench_dask.py --households 2000 --days 3 --workers 1 2
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlmodel import Session, select

from data.db import init_db, make_engine
from data.ingest import ingest_households, ingest_readings
from data.tables import DetectorCheckpoint, Finding, Incident
from watch.app import _AppIncidentHooks
from watch.detect import run_detection
from watch.engines import LocalEngine, open_engine

START = datetime(2025, 1, 6, tzinfo=UTC)


def write_files(folder: Path, households: int, days: int, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    slots = days * 48
    ids = np.array([f"h{i:06d}" for i in range(households)])
    roster = folder / "households.csv"
    pd.DataFrame({"household_id": ids, "name": "Resident", "timezone": "Asia/Tokyo"}).to_csv(
        roster, index=False
    )
    ends = pd.date_range(START + timedelta(minutes=30), periods=slots, freq="30min")
    hour = (ends.tz_convert("Asia/Tokyo").hour * 60 + ends.tz_convert("Asia/Tokyo").minute) / 60
    hour = hour.to_numpy()
    standby = rng.uniform(0.04, 0.07, (households, 1))
    kwh = standby + rng.normal(0, 0.004, (households, slots))
    awake = (hour >= 6.5) & (hour < 22.5)
    active = awake & (rng.random((households, slots)) < 0.45)
    kwh += np.where(active, rng.uniform(0.03, 0.4, (households, slots)), 0.0)
    quiet = rng.random(households) < 0.1
    kwh[quiet, -40:] = standby[quiet] + rng.normal(0, 0.004, (int(quiet.sum()), 40))
    kwh = np.round(np.maximum(kwh, 0.0), 3)
    stamps = ends.tz_convert("Asia/Tokyo").strftime("%Y-%m-%dT%H:%M:%S+09:00").to_numpy()
    readings = folder / "readings.csv"
    pd.DataFrame(
        {
            "household_id": np.repeat(ids, slots),
            "timestamp": np.tile(stamps, households),
            "kwh": kwh.ravel(),
        }
    ).to_csv(readings, index=False)
    return roster, readings


class TimedLocal(LocalEngine):
    """The local engine, counting the seconds spent scoring (the rest is the coordinator)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def score_chunks(self, chunks):  # noqa: ANN001, ANN201
        for chunk in chunks:
            started = time.perf_counter()
            results = next(super().score_chunks([chunk]))
            self.seconds += time.perf_counter() - started
            yield results


def outcome(engine) -> tuple:  # noqa: ANN001
    with Session(engine) as session:
        findings = session.exec(
            select(Finding.household_id, Finding.kind, Finding.severity, Finding.since)
        ).all()
        incidents = session.exec(select(Incident.household_id, Incident.kind, Incident.since)).all()
        cursors = session.exec(
            select(DetectorCheckpoint.household_id, DetectorCheckpoint.scored_until)
        ).all()
    return sorted(findings), sorted(incidents), sorted(cursors)


def timed_run(template: Path, folder: Path, label: str, scoring, now: datetime):  # noqa: ANN001, ANN201
    copy = folder / f"{label}.db"
    shutil.copyfile(template, copy)
    engine = make_engine(f"sqlite:///{copy}")
    load = os.getloadavg()[0]
    started = time.perf_counter()
    report = run_detection(
        engine=engine,
        now=now,
        data_grace=timedelta(minutes=90),
        hooks=_AppIncidentHooks(),
        scoring=scoring,
    )
    seconds = time.perf_counter() - started
    result = outcome(engine)
    engine.dispose()
    return seconds, load, report, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each figure as soon as it is measured
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        roster, readings = write_files(folder, args.households, args.days, args.seed)
        template = folder / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        init_db(engine)
        now = START + timedelta(days=args.days, hours=1)
        ingest_households(engine=engine, path=roster, now=now)
        ingest_readings(engine=engine, path=readings, now=now)
        engine.dispose()
        slots = args.households * args.days * 48
        print(
            f"{args.households:,d} households x {args.days} days = {slots:,d} readings, "
            f"generated and loaded into SQLite in {time.perf_counter() - started:.1f} s; "
            f"{os.cpu_count()} CPUs"
        )

        local = TimedLocal()
        base, load, report, expected = timed_run(template, folder, "local", local, now)
        print(
            f"local          {base:7.2f} s  {report.slots_scored / base:>8,.0f} slots/s  "
            f"load {load:4.2f}  (scoring {local.seconds:.2f} s, coordinator "
            f"{base - local.seconds:.2f} s = {100 * (base - local.seconds) / base:.0f}%)  "
            f"{len(report.findings)} findings, {len(report.incidents_opened)} incidents"
        )
        one = None  # the 1-worker time, for the scale-out ratio
        for workers in args.workers:
            with LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster:
                with open_engine("dask", cluster.scheduler_address) as scoring:
                    list(scoring.score_chunks([[]]))  # warm-up: workers import the scorer
                    seconds, load, report, result = timed_run(
                        template, folder, f"dask{workers}", scoring, now
                    )
            if result != expected:
                raise SystemExit(f"dask with {workers} workers disagrees with the local run")
            print(
                f"dask {workers} worker{'s' if workers > 1 else ' '}  {seconds:7.2f} s  "
                f"{report.slots_scored / seconds:>8,.0f} slots/s  load {load:4.2f}  "
                f"speed-up vs local {base / seconds:4.2f}x"
                + (f", vs 1 worker {one / seconds:4.2f}x" if one and workers > 1 else "")
            )
            if workers == 1:
                one = seconds


if __name__ == "__main__":
    main()
