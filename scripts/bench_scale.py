"""Measure AreaWatch at an area's scale: daily batch, 30-minute tick, chart query, detector state.

    python scripts/bench_scale.py --households 10000
    python scripts/bench_scale.py --households 100000 --skip-sqlite \
        --postgres-url postgresql://postgres@127.0.0.1:5432/test --json-out /tmp/scale.json

It writes its own input (deterministic synthetic 30-minute readings, Parquet by default) in a
temporary folder, then, for each database, in a fresh child process (so its peak memory is its
own) on a fresh database (SQLite: a temporary file; PostgreSQL: a new schema, dropped after):

(a) daily batch: ingest each day's file (48 readings per household) and run detection as
    ``areawatch detect`` does (``App.detect``); incidents opened are counted;
(b) 30-minute tick: one new reading per household, ingested and detected;
(d) detector state: every household's ``DetectorCheckpoint`` restored (read + unpickled) and
    checkpointed (pickled + upserted in batches of 500, as detection writes them);
(c) the household chart query of the dashboard (``usage_with_band``: 14 days shown, 28 days of
    band before them) over random households, after ``--chart-days`` of history have been loaded
    (by the normal ingest, timed too) for every household.

With ``--resident``, the state held in memory after the last phase is also written as a snapshot
file (``watch.resident_snapshot``, what ``areawatch run`` does on stopping) and read back, each
time in a new process as a restarted service would: once with its files dropped from the page
cache (``posix_fadvise``), as after a reboot, once from the cache. ``--snapshot-only`` measures
only that, on a synthetic store of ``--households`` rows (no database, no ingest): the way to
measure it at 1,000,000.

Each figure is printed beside its floor: the time pandas/pyarrow take merely to read the same
input file (for the state, an in-memory pickle round trip of the same states). Peak memory is
the child's high-water mark (``VmHWM``, plus ``ru_maxrss`` of its children) after each phase; it
only grows, so the figure after (a) is the daily batch's. Phases can be skipped
(``--phases a,b``), and detection too (``--skip-detect``), to split big runs.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

FIRST_DAY = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday; the days measured start here
SLOTS_PER_DAY = 48
# Share of households that go quiet (fridge standby only) from the morning of the last day:
# what the inactivity detector exists to notice.
QUIET_SHARE = 0.005


# -- input ----------------------------------------------------------------------------------------
def household_ids(count: int) -> np.ndarray:
    return np.char.add("h", np.char.zfill(np.arange(count).astype(str), 7)).astype(object)


def synthetic_kwh(first: int, count: int, total: int, ends: pd.DatetimeIndex, quiet: bool):  # noqa: ANN201
    """kWh of households ``first`` .. ``first + count`` (of ``total``) by slot, deterministic.

    Each household has its own base load and daily rhythm (a morning and an evening peak at its
    own hours, Tokyo time) plus noise. ``quiet`` households are at standby from 09:30 Tokyo.
    """
    rows = slice(first, first + count)
    base = np.random.default_rng(1).uniform(0.03, 0.08, total)[rows, None]
    shift = np.random.default_rng(2).integers(-2, 3, total)[rows, None]
    noise = np.random.default_rng([int(ends[0].timestamp()) // 1800, first])
    local = ends.tz_convert("Asia/Tokyo")
    local_slot = (local.hour * 2 + local.minute // 30).to_numpy()[None, :]
    slot = (local_slot - shift) % SLOTS_PER_DAY
    morning = np.exp(-(((slot - 15) / 2.5) ** 2)) * 0.35
    evening = np.exp(-(((slot - 38) / 4.0) ** 2)) * 0.45
    asleep = (slot < 12) | (slot > 45)
    kwh = base + morning + evening + np.where(asleep, 0.0, noise.gamma(2.0, 0.03, slot.shape))
    if quiet:
        quiet_rows = np.arange(first, first + count) % int(1 / QUIET_SHARE) == 7
        kwh[np.ix_(quiet_rows, local_slot[0] >= 19)] = 0.02
    return np.round(kwh, 3)


def write_readings(path: Path, ids: np.ndarray, ends: pd.DatetimeIndex, quiet: bool) -> Path:
    """Write readings for every household and slot, a block of households at a time."""
    stamps = ends.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[us]")
    block = max(1, 2_000_000 // len(ends))
    writer = None
    for start in range(0, len(ids), block):
        part = ids[start : start + block]
        kwh = synthetic_kwh(start, len(part), len(ids), ends, quiet)
        table = pa.table(
            {
                "household_id": pa.array(np.repeat(part, len(ends)), pa.string()),
                "timestamp": pa.array(np.tile(stamps, len(part)), pa.timestamp("us", tz="UTC")),
                "kwh": kwh.reshape(-1),
            }
        )
        if writer is None:
            writer = (
                pq.ParquetWriter(path, table.schema)
                if path.suffix == ".parquet"
                else pcsv.CSVWriter(path, table.schema)
            )
        writer.write_table(table)
    writer.close()
    return path


def read_floor(path: Path) -> float:
    """Seconds for pyarrow merely to read ``path`` into memory (and pandas to own it)."""
    started = time.perf_counter()
    if path.suffix == ".parquet":
        pq.read_table(path).to_pandas()
    else:
        pcsv.read_csv(path).to_pandas()
    return time.perf_counter() - started


def day_ends(day: int) -> pd.DatetimeIndex:
    start = FIRST_DAY + timedelta(days=day)
    return pd.date_range(start + timedelta(minutes=30), start + timedelta(days=1), freq="30min")


# -- one database, in a child process --------------------------------------------------------------
def peak_rss_mb() -> float:
    """Peak resident memory of this process plus that of its largest finished child, in MB.

    Linux carries ``ru_maxrss`` across ``exec`` from the process that forked it, so a child
    started by this script would report the parent's peak (the input generation) as its own;
    ``VmHWM`` is the peak of the child's own address space. Elsewhere ``ru_maxrss`` stands.
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    try:
        status = Path("/proc/self/status").read_text()
        own = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    except (OSError, StopIteration):
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (own + children) / 1024  # both in KiB on Linux


def run_database(args: argparse.Namespace) -> dict:
    from sqlalchemy import text

    from data.db import init_db, make_engine
    from data.ingest import ingest_households, ingest_readings
    from data.partitions import ensure_reading_partitions
    from watch.app import App
    from watch.clock import FrozenClock
    from watch.resident import ResidentStates
    from watch.settings import Settings

    folder = Path(args.folder)
    files = json.loads((folder / "files.json").read_text())
    phases = set(args.phases.split(","))
    engine = make_engine(args.url)
    result: dict = {"database": args.label, "households": args.households}
    started = time.perf_counter()
    init_db(engine)
    first_month = FIRST_DAY - timedelta(days=args.chart_days + 1)
    ensure_reading_partitions(engine=engine, now=first_month, months_ahead=3)
    ingest_households(engine=engine, path=folder / "households.csv", now=first_month)
    result["setup_s"] = time.perf_counter() - started
    clock = FrozenClock(FIRST_DAY)
    app = App(settings=Settings(database_url=args.url), engine=engine, clock=clock)
    # ``--resident``: as ``areawatch run`` does, one store of quiet households' state in memory
    # across the runs (``watch.resident``); otherwise as ``areawatch detect`` from cron.
    resident = ResidentStates(flush_every=timedelta(hours=6)) if args.resident else None

    def ingest_and_detect(path: str, now: datetime) -> dict:
        clock.set(now)
        began = time.perf_counter()
        report = ingest_readings(engine=engine, path=path, now=now)
        ingested = time.perf_counter() - began
        figures = {
            "ingest_s": ingested,
            "rows": report.rows_inserted,
            "quarantined": report.rows_quarantined,
            "ingest_peak_rss_mb": peak_rss_mb(),
        }
        if args.skip_detect:
            return {**figures, "detect_s": None, "total_s": ingested, "peak_rss_mb": peak_rss_mb()}
        detected = app.detect(resident=resident)
        total = time.perf_counter() - began
        return {
            **figures,
            "detect_s": total - ingested,
            "total_s": total,
            "slots_scored": detected.slots_scored,
            "findings": len(detected.findings),
            "incidents_opened": len(detected.incidents_opened),
            "resident": len(resident) if resident is not None else None,
            "peak_rss_mb": peak_rss_mb(),
        }

    def keep(key: str, value: dict | list) -> None:
        # A long run that is stopped still leaves the phases it finished.
        result[key] = value
        if args.partial_out:
            Path(args.partial_out).write_text(json.dumps(result, indent=2, default=str))

    if "a" in phases:
        daily = []
        for day, path in enumerate(files["days"]):
            daily.append(ingest_and_detect(path, FIRST_DAY + timedelta(days=day + 1, minutes=10)))
            keep("daily", daily)
    if "b" in phases:
        tick_end = FIRST_DAY + timedelta(days=len(files["days"]), minutes=30)
        keep("tick", ingest_and_detect(files["tick"], tick_end + timedelta(minutes=5)))
    if resident is not None and len(resident):
        keep("snapshot", measure_snapshot(resident, folder / "resident-snapshot", args.url))
    if resident is not None and len(resident):
        began = time.perf_counter()
        written = resident.flush(engine, clock.now(), everything=True)
        keep("flush", {"seconds": time.perf_counter() - began, "households": written})
    if "d" in phases:
        keep("state", {**measure_state(engine), "peak_rss_mb": peak_rss_mb()})
    if "c" in phases:
        chart = measure_chart(args, engine, files, ingest_readings)
        keep("chart", {**chart, "peak_rss_mb": peak_rss_mb()})
    with engine.connect() as connection:
        result["readings_stored"] = connection.execute(
            text("SELECT COUNT(*) FROM reading")
        ).scalar()
    engine.dispose()
    return result


def measure_snapshot(store, folder: Path, database: str) -> dict:  # noqa: ANN001
    """Write ``store`` as a snapshot and read it back: warm, then with its files out of the
    page cache."""
    figures = save_snapshot_timed(store, folder, database)
    return figures | load_snapshot_timed(folder, database, figures["households"])


def save_snapshot_timed(store, folder: Path, database: str) -> dict:  # noqa: ANN001
    from watch.resident_snapshot import save_snapshot

    began = time.perf_counter()
    written = save_snapshot(store, folder, database=database, now=FIRST_DAY)
    return {
        "households": written.households,
        "bytes": written.bytes,
        "save_s": time.perf_counter() - began,
        "path": str(written.path),
    }


def load_snapshot_timed(folder: Path, database: str, households: int) -> dict:
    """Read the snapshot back in a new process each time, as a restarted service does (in
    this one, memory the allocator kept from earlier reads would make it look faster): first
    with its files dropped from the page cache, as after a reboot, then from the cache."""
    figures = {}
    for read in ("load_cold_s", "load_warm_s"):
        if read == "load_cold_s":
            for path in folder.rglob("*.npy"):
                handle = os.open(path, os.O_RDONLY)
                os.posix_fadvise(handle, 0, 0, os.POSIX_FADV_DONTNEED)
                os.close(handle)
        command = [sys.executable, __file__, "--read-snapshot", str(folder), "--url", database]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        seconds, read_back = json.loads(done.stdout.strip().splitlines()[-1])
        if read_back != households:
            raise RuntimeError(f"read back {read_back} of {households} households")
        figures[read] = seconds
    return figures


def read_snapshot(folder: Path, database: str) -> tuple[float, int]:
    from watch.resident import ResidentStates
    from watch.resident_snapshot import restore_snapshot

    store = ResidentStates()
    began = time.perf_counter()
    restore_snapshot(store, folder, database=database)
    return time.perf_counter() - began, len(store)


def synthetic_store(households: int):  # noqa: ANN201
    """A store of ``households`` resident rows with plausible values (no database)."""
    from detectors.batch_quiet import detector_parameters
    from detectors.inactivity import QuietStretchDetector
    from detectors.outage import DataOutage
    from watch.resident import BLOCK_ROWS, Block, ResidentStates

    key = (detector_parameters(QuietStretchDetector()), detector_parameters(DataOutage()))
    rng = np.random.default_rng(7)
    blocks = []
    for first in range(0, households, BLOCK_ROWS):
        block = Block.new(*key)
        rows = min(BLOCK_ROWS, households - first)
        state = block.state
        # Meters count whole Wh; slot kWh are their sums, as ``synthetic_kwh`` rounds them.
        kwh = rng.gamma(2.0, 0.05, (rows, state.evidence.window.shape[1]))
        state.evidence.window[:rows] = np.round(kwh, 3)
        state.evidence.length[:rows] = state.evidence.window.shape[1]
        # Every bin's history full (a year's stretches), as ``bin_min`` and ``next_slot`` say.
        state.steps[:rows] = rng.integers(0, 40, state.steps[:rows].shape)
        state.bin_min[:rows] = state.steps[:rows].min(axis=2) / np.float32(2)
        _, bins, per_bin = state.steps.shape
        state.next_slot[:rows] = rng.integers(per_bin, 400, (rows, bins))
        state.raised_rate[:rows] = rng.random((rows, 24))
        block.cursor[:rows] = block.base[:rows] = FIRST_DAY.timestamp()
        block.flush_at[:rows] = block.cursor[:rows] + 6 * 3600
        block.ids[:rows] = [f"H{first + n:07d}" for n in range(rows)]
        block.free = block.free[: BLOCK_ROWS - rows]
        blocks.append(block)
    store = ResidentStates()
    store.adopt(blocks)
    return store


def snapshot_only(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    began = time.perf_counter()
    store = synthetic_store(args.households)
    print(
        f"{args.households:,d} synthetic resident households built in "
        f"{time.perf_counter() - began:.1f} s; load average {load[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="bench_scale_", dir=args.snapshot_folder) as name:
        folder = Path(name) / "resident-snapshot"
        figures = save_snapshot_timed(store, folder, "synthetic")
        del store  # what a restarted process holds: only what it reads back
        figures |= load_snapshot_timed(folder, "synthetic", figures["households"])
    print_snapshot("memory", figures)
    print(f"load average now {os.getloadavg()[0]:.2f}; peak {peak_rss_mb():,.0f} MB")


def print_snapshot(db: str, snapshot: dict) -> None:
    per_household = snapshot["bytes"] / max(snapshot["households"], 1)
    print(
        f"{db:9s} {'    resident snapshot save':32s} {snapshot['save_s']:9.2f}"
        f"{'':17s}  {snapshot['households']:,d} households, {snapshot['bytes'] / 1e9:.2f} GB "
        f"({per_household:,.0f} B a household), fsynced"
    )
    print(
        f"{db:9s} {'    resident snapshot load':32s} {snapshot['load_cold_s']:9.2f}"
        f"{'':17s}  files out of the page cache; {snapshot['load_warm_s']:.2f} s from the cache"
    )


def measure_state(engine) -> dict:  # noqa: ANN001
    from sqlmodel import Session, select

    from data.tables import DetectorCheckpoint
    from data.upsert import upsert

    began = time.perf_counter()
    with Session(engine) as session:
        rows = session.exec(select(DetectorCheckpoint)).all()
        states = [(row, pickle.loads(row.state)) for row in rows]  # noqa: S301 (our own rows)
    restore = time.perf_counter() - began
    began = time.perf_counter()
    for start in range(0, len(states), 500):
        with Session(engine) as session:
            upsert(
                session,
                DetectorCheckpoint,
                [
                    {
                        "household_id": row.household_id,
                        "detector": row.detector,
                        "state": pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL),
                        "scored_until": row.scored_until,
                        "updated_at": row.updated_at,
                    }
                    for row, state in states[start : start + 500]
                ],
                key=["household_id", "detector"],
            )
            session.commit()
    checkpoint = time.perf_counter() - began
    began = time.perf_counter()
    blobs = [pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL) for _, state in states]
    for blob in blobs:
        pickle.loads(blob)  # noqa: S301
    floor = time.perf_counter() - began
    sizes = [len(blob) for blob in blobs] or [0]
    return {
        "households": len(states),
        "restore_s": restore,
        "checkpoint_s": checkpoint,
        "total_s": restore + checkpoint,
        "floor_s": floor,
        "state_bytes_mean": statistics.fmean(sizes),
    }


def measure_chart(args: argparse.Namespace, engine, files: dict, ingest_readings) -> dict:  # noqa: ANN001
    from sqlmodel import Session

    from data.tables import Household
    from watch.web.queries import chart_readings, usage_with_band

    history = {}
    if files.get("history"):
        began = time.perf_counter()
        report = ingest_readings(engine=engine, path=files["history"], now=FIRST_DAY)
        seconds = time.perf_counter() - began
        history = {"history_rows": report.rows_inserted, "history_ingest_s": seconds}
    now = FIRST_DAY + timedelta(days=len(files["days"]), hours=1)
    ids = random.Random(7).sample(range(args.households), min(args.chart_samples, args.households))
    query_ms, chart_ms = [], []
    with Session(engine) as session:
        for number in ids:
            household = session.get(Household, f"h{number:07d}")
            began = time.perf_counter()
            chart_readings(session, household.id, now)  # the query usage_with_band runs, alone ...
            query_ms.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            usage_with_band(session, household, now)  # ... and the whole chart's data
            chart_ms.append((time.perf_counter() - began) * 1000)
    return {
        **history,
        "samples": len(ids),
        "query_median_ms": statistics.median(query_ms),
        "query_p95_ms": float(np.percentile(query_ms, 95)),
        "chart_median_ms": statistics.median(chart_ms),
        "chart_p95_ms": float(np.percentile(chart_ms, 95)),
    }


# -- the parent: input, children, table ------------------------------------------------------------
def write_inputs(folder: Path, args: argparse.Namespace) -> dict:
    ids = household_ids(args.households)
    pd.DataFrame({"household_id": ids, "name": "Resident", "timezone": "Asia/Tokyo"}).to_csv(
        folder / "households.csv", index=False
    )
    suffix = ".parquet" if args.format == "parquet" else ".csv"
    days = [
        str(write_readings(folder / f"day{d}{suffix}", ids, day_ends(d), d == args.days - 1))
        for d in range(args.days)
    ]
    tick_end = FIRST_DAY + timedelta(days=args.days, minutes=30)
    tick = write_readings(folder / f"tick{suffix}", ids, pd.DatetimeIndex([tick_end]), False)
    files = {"days": days, "tick": str(tick), "history": None}
    if args.chart_days and "c" in args.phases:
        ends = pd.date_range(
            FIRST_DAY - timedelta(days=args.chart_days) + timedelta(minutes=30),
            FIRST_DAY - timedelta(days=1),
            freq="30min",
        )  # the days before the measured ones, up to the day before the first (its own file)
        files["history"] = str(write_readings(folder / f"history{suffix}", ids, ends, False))
    (folder / "files.json").write_text(json.dumps(files))
    return files


def postgres_schema(url: str) -> tuple[str, callable]:
    from sqlalchemy import text

    from data.db import make_engine, normalise_url

    schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{normalise_url(url)}?options=-csearch_path%3D{schema}", drop


def print_table(results: list[dict], floors: dict) -> None:
    print(f"\n{'database':9s} {'phase':32s} {'seconds':>9s} {'floor s':>8s} {'ratio':>7s}  notes")

    def line(db: str, phase: str, seconds: float, floor: float | None, notes: str) -> None:
        ratio = f"{seconds / floor:7.1f}" if floor else "      -"
        floor_text = f"{floor:8.2f}" if floor else "       -"
        print(f"{db:9s} {phase:32s} {seconds:9.2f} {floor_text} {ratio}  {notes}")

    for result in results:
        db = result["database"]
        line(db, "setup (schema, roster)", result["setup_s"], None, "")
        for day, daily in enumerate(result.get("daily", [])):
            floor = floors["days"][day]
            notes = (
                f"ingest {daily['ingest_s']:.1f} s ({daily['rows']:,d} rows), "
                + (
                    f"detect {daily['detect_s']:.1f} s ({daily['slots_scored']:,d} slots), "
                    f"{daily['incidents_opened']} incidents, "
                    if daily["detect_s"] is not None
                    else "detection skipped, "
                )
                + f"peak {daily['peak_rss_mb']:,.0f} MB"
            )
            line(db, f"(a) daily batch, day {day + 1}", daily["total_s"], floor, notes)
        if "tick" in result:
            tick = result["tick"]
            notes = (
                f"ingest {tick['ingest_s']:.2f} s, "
                + (
                    f"detect {tick['detect_s']:.2f} s, {tick['incidents_opened']} incidents, "
                    if tick["detect_s"] is not None
                    else "detection skipped, "
                )
                + f"peak {tick['peak_rss_mb']:,.0f} MB"
            )
            line(db, "(b) 30-minute tick", tick["total_s"], floors["tick"], notes)
        if "snapshot" in result:
            print_snapshot(db, result["snapshot"])
        if "flush" in result:
            flush = result["flush"]
            notes = f"{flush['households']:,d} households' state held in memory written"
            line(db, "    resident flush (every 6 h)", flush["seconds"], None, notes)
        if "state" in result:
            state = result["state"]
            notes = (
                f"restore {state['restore_s']:.2f} s + checkpoint {state['checkpoint_s']:.2f} s, "
                f"{state['households']:,d} states of {state['state_bytes_mean']:,.0f} B"
            )
            line(db, "(d) detector state", state["total_s"], state["floor_s"], notes)
        if "chart" in result:
            chart = result["chart"]
            if "history_ingest_s" in chart:
                rows = chart["history_rows"]
                rate = rows / chart["history_ingest_s"]
                line(
                    db, "    history ingest for (c)", chart["history_ingest_s"],
                    floors.get("history"), f"{rows:,d} rows, {rate:,.0f} rows/s",
                )  # fmt: skip
            print(
                f"{db:9s} {'(c) chart query, ms':32s} query median {chart['query_median_ms']:.1f}"
                f" p95 {chart['query_p95_ms']:.1f}; whole chart median "
                f"{chart['chart_median_ms']:.1f} p95 {chart['chart_p95_ms']:.1f} "
                f"({chart['samples']} households, {result['readings_stored']:,d} readings stored)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=1, help="daily batches, one after another")
    parser.add_argument("--postgres-url", default=os.environ.get("AREAWATCH_TEST_POSTGRES_URL"))
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--phases", default="a,b,d,c", help="any of a,b,c,d (run in that order)")
    parser.add_argument("--chart-days", type=int, default=43, help="history for (c); 0: none")
    parser.add_argument("--chart-samples", type=int, default=200)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument(
        "--skip-detect", action="store_true", help="(a) and (b) ingest only (for big runs)"
    )
    parser.add_argument(
        "--resident",
        action="store_true",
        help="keep quiet households' state in memory across runs, as `areawatch run` does",
    )
    parser.add_argument(
        "--snapshot-only",
        action="store_true",
        help="only write and read a snapshot of --households synthetic resident rows",
    )
    parser.add_argument("--snapshot-folder", help="where --snapshot-only writes (default: /tmp)")
    parser.add_argument("--json-out", type=Path)
    # Internal: run one database in this process.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--label", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--partial-out", help=argparse.SUPPRESS)
    parser.add_argument("--read-snapshot", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_database(args)))
        return
    if args.read_snapshot:
        print(json.dumps(read_snapshot(Path(args.read_snapshot), args.url)))
        return
    if args.snapshot_only:
        snapshot_only(args)
        return

    load = os.getloadavg()
    print(f"{args.households:,d} households, {args.days} day(s); load average {load[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as name:
        folder = Path(name)
        began = time.perf_counter()
        files = write_inputs(folder, args)
        print(f"input written in {time.perf_counter() - began:.1f} s to {folder}")
        read_floor(Path(files["tick"]))  # once untimed: imports and caches warm
        floors = {
            "days": [read_floor(Path(path)) for path in files["days"]],
            "tick": read_floor(Path(files["tick"])),
        }
        if files["history"]:
            floors["history"] = read_floor(Path(files["history"]))
        targets = [] if args.skip_sqlite else [("sqlite", f"sqlite:///{folder / 'bench.db'}", None)]
        if args.postgres_url:
            targets.append(("postgres", *postgres_schema(args.postgres_url)))
        results = []
        for label, url, drop in targets:
            command = [
                sys.executable, __file__, "--child", "--url", url, "--label", label,
                "--folder", str(folder), "--households", str(args.households),
                "--phases", args.phases, "--chart-days", str(args.chart_days),
                "--chart-samples", str(args.chart_samples),
            ]  # fmt: skip
            if args.skip_detect:
                command.append("--skip-detect")
            if args.resident:
                command.append("--resident")
            if args.json_out:
                command += ["--partial-out", f"{args.json_out}.{label}.partial.json"]
            try:
                done = subprocess.run(command, check=True, capture_output=True, text=True)
            except subprocess.CalledProcessError as error:
                sys.stderr.write(error.stderr)
                raise
            finally:
                if drop is not None:
                    drop()
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"{label}: done (load average now {os.getloadavg()[0]:.2f})")
    print_table(results, floors)
    if args.json_out:
        report = {
            "households": args.households,
            "days": args.days,
            "load_average_at_start": load,
            "load_average_at_end": os.getloadavg(),
            "cpus": os.cpu_count(),
            "floors": floors,
            "results": results,
        }
        args.json_out.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
