"""Where detection's time goes: a few days of synthetic homes on SQLite, the last day profiled.

    python scripts/profile_detection.py --households 2000 --days 8
    python scripts/profile_detection.py --households 2000 --days 8 --one-at-a-time

Uses ``bench_scale``'s synthetic homes (their own base load and daily rhythm; on the last day
0.5 % go quiet from 09:30). Each day's 48 readings per home are ingested, then ``App.detect``
runs as ``areawatch detect`` does; its wall time, households, slots and findings are printed per
day, and cProfile's top functions for the last day.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_scale  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--one-at-a-time", action="store_true", help="[detection] vectorised off")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    from data.db import init_db, make_engine
    from data.ingest import ingest_households, ingest_readings
    from watch.app import App
    from watch.clock import FrozenClock
    from watch.settings import DetectionSettings, Settings

    folder = Path(tempfile.mkdtemp(prefix="profile_detection_"))
    ids = bench_scale.household_ids(args.households)
    roster = folder / "households.csv"
    pd.DataFrame({"household_id": ids, "name": "Resident", "timezone": "Asia/Tokyo"}).to_csv(
        roster, index=False
    )
    url = f"sqlite:///{folder / 'areawatch.db'}"
    engine = make_engine(url)
    init_db(engine)
    ingest_households(engine=engine, path=roster, now=bench_scale.FIRST_DAY)
    clock = FrozenClock(bench_scale.FIRST_DAY)
    settings = Settings(
        database_url=url, detection=DetectionSettings(vectorised=not args.one_at_a_time)
    )
    app = App(settings=settings, engine=engine, clock=clock)
    profile = cProfile.Profile()
    for day in range(args.days):
        ends = bench_scale.day_ends(day)
        last = day == args.days - 1
        path = bench_scale.write_readings(folder / f"day{day}.parquet", ids, ends, quiet=last)
        now = ends[-1].to_pydatetime() + timedelta(minutes=5)
        clock.set(now)
        ingest_readings(engine=engine, path=path, now=now)
        started = time.perf_counter()
        if last:
            profile.enable()
        report = app.detect()
        if last:
            profile.disable()
        print(
            f"day {day + 1}: detect {time.perf_counter() - started:.2f} s, "
            f"{report.households_scored} households, {report.slots_scored} slots, "
            f"{len(report.findings)} findings, {len(report.incidents_opened)} incidents opened"
        )
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    print(f"(files in {folder})")


if __name__ == "__main__":
    main()
