"""Meter readings: ``household_id,timestamp,kwh`` where ``timestamp`` is the interval's END.

Two phases. The first reads the whole file chunk by chunk, quarantines bad rows as it goes and
keeps the good ones as compact columns, so duplicate keys are found across chunks and each
household's interval is inferred from all its rows. The second merges the rows into ``reading``
in chunks, each in one transaction that records corrections (stored kwh differs) and writes
the new and changed rows (``data.ingest.reading_merge``: by upsert on SQLite, on PostgreSQL by
splitting new keys from stored ones, which lets new rows go in without a per-row conflict
check; a chunk with nothing stored goes into ``reading`` by one COPY, ``reading_copy``). A run
killed part-way leaves whole chunks behind; running the file again finishes the rest and finds
the written chunks unchanged, so no correction is ever recorded twice.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from data.ingest.keys import KnownHouseholds, find_duplicates
from data.ingest.reading_checks import check_columns, check_text_rows
from data.ingest.reading_copy import copy_if_all_new
from data.ingest.reading_merge import ChunkCounts, merge_by_split, merge_by_upsert
from data.ingest.report import IngestReport
from data.ingest.run import IngestRun, as_utc, ingest_run
from data.ingest.source import (
    DEFAULT_CHUNK_ROWS,
    ColumnChunk,
    Source,
    open_source,
    require_columns,
)
from data.ingest.zones import zone_or_none
from data.partitions import (
    DEFAULT_PARTITION,
    is_partitioned,
    month_partitions,
)
from data.tables import Household

DEFAULT_INTERVAL_MINUTES = 30
#: On PostgreSQL, a load of at least this many new rows refreshes the planner's statistics.
ANALYZE_AFTER_ROWS = 100_000
ACCEPTED_INTERVALS = (1, 5, 10, 15, 30, 60)


def ingest_readings(
    *,
    engine: Engine,
    path: str | Path,
    now: datetime,
    tz: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> IngestReport:
    """Load a readings file (CSV, CSV.gz or Parquet) idempotently; quarantine the bad rows.

    Parameters
    ----------
    engine : Engine
        The database (SQLite or PostgreSQL).
    path : str or Path
        The file: ``.parquet`` is read as Parquet, anything else as UTF-8 CSV (``.gz`` unpacked).
    now : datetime
        Aware time of the ingest; readings ending more than 5 minutes after it are refused.
    tz : str, optional
        IANA zone for timestamps written without a UTC offset; without it those are refused.
    chunk_rows : int
        Rows per chunk, and so per write transaction.

    Returns
    -------
    IngestReport
        The counts (also stored on the run's ``Ingest`` row) and the first quarantined lines.

    Raises
    ------
    IngestError
        The file cannot be read or lacks a required column (recorded on the ``Ingest`` row too).
    ValueError
        ``tz`` is not an IANA zone, or ``now`` is naive.
    """
    now = as_utc(now)
    zone = zone_or_none(tz)
    with ingest_run(engine=engine, kind="readings", path=path, now=now) as run:
        source = open_source(path, chunk_rows=chunk_rows)
        require_columns(source, ("household_id", "timestamp", "kwh"))
        known = KnownHouseholds.load(engine)
        rows = _read_good_rows(run, source, known, zone, now)
        # In key order, a key's rows in file order: duplicate keys become neighbours, and the
        # interval inference and the merge need key order too.
        rows = rows.sort_values(["code", "end", "line"], ignore_index=True)
        rows = _drop_in_file_duplicates(run, source, known, rows)
        remembered = _remembered_intervals(engine, known)
        minutes = _interval_minutes(rows, remembered)
        _remember_intervals(engine, known, rows, minutes, remembered)
        _merge(run, known, rows, minutes, now, chunk_rows)
        _refresh_statistics(run, rows)
    return run.report


def _refresh_statistics(run: IngestRun, rows: pd.DataFrame) -> None:
    """PostgreSQL: after a large load, ANALYZE the month partitions it wrote to.

    Until autovacuum gets round to it (minutes to hours on a busy server, longer than a daily
    batch), the planner knows nothing of a freshly filled partition: detection's reads of 500
    households then become parallel bitmap scans of the whole month with a sort and JIT, seconds
    each instead of milliseconds (measured on 48M new rows: a chunk took 2-3 s). ANALYZE samples
    a fixed number of rows per partition, so this costs about a second each.
    """
    if run.engine.dialect.name != "postgresql" or run.report.rows_inserted < ANALYZE_AFTER_ROWS:
        return
    ends = pd.DatetimeIndex(rows["end"])  # UTC, without the zone
    if ends.tz is not None:
        ends = ends.tz_convert("UTC").tz_localize(None)
    months = {date(period.year, period.month, 1) for period in ends.to_period("M").unique()}
    with run.engine.begin() as connection:
        if not is_partitioned(connection):
            connection.execute(text("ANALYZE reading"))
            return
        existing = month_partitions(connection)
        names = [existing[m] for m in sorted(months) if m in existing]
        if len(names) < len(months):
            names.append(DEFAULT_PARTITION)
        for name in names:
            connection.execute(text(f'ANALYZE "{name}"'))


def _read_good_rows(
    run: IngestRun,
    source: Source,
    known: KnownHouseholds,
    zone: ZoneInfo | None,
    now: datetime,
) -> pd.DataFrame:
    parts = []
    # Columns where the file allows (each distinct value checked once), else text row by row.
    for chunk in source.column_chunks():
        run.report.rows_read += len(chunk)
        if isinstance(chunk, ColumnChunk):
            checked = check_columns(chunk, known, zone, now)
        else:
            checked = check_text_rows(chunk, known, zone, now)
        good = run.quarantine_chunk(chunk, checked.reasons)
        parts.append(
            pd.DataFrame(
                {
                    "code": checked.codes[good].astype(np.int32),
                    "end": checked.ends[good],
                    "kwh": checked.kwh[good],
                    "line": chunk.line_numbers[good],
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {
                "code": np.array([], dtype=np.int32),
                "end": np.array([], dtype="datetime64[us]"),
                "kwh": np.array([], dtype=np.float64),
                "line": np.array([], dtype=np.int64),
            }
        )
    return pd.concat(parts, ignore_index=True)


def _drop_in_file_duplicates(
    run: IngestRun,
    source: Source,
    known: KnownHouseholds,
    rows: pd.DataFrame,
) -> pd.DataFrame:
    """``rows`` in key order, each key's rows in file order (as ``find_duplicates`` needs)."""
    codes, ends = rows["code"].to_numpy(), rows["end"].to_numpy()
    if not ((codes[1:] == codes[:-1]) & (ends[1:] == ends[:-1])).any():
        return rows  # the common case, no key twice, found without hashing every row
    duplicates = find_duplicates(rows, ["code", "end"], ["kwh"])
    run.report.rows_unchanged += len(duplicates.repeats)
    if len(duplicates.conflicting):
        conflicts = rows.iloc[duplicates.conflicting].sort_values("line")
        lines_by_key = conflicts.groupby(["code", "end"])["line"].agg(list)
        reasons = []
        for code, end in zip(conflicts["code"], conflicts["end"], strict=True):
            lines = ", ".join(map(str, lines_by_key[(code, end)]))
            reasons.append(
                f"household {known.ids[code]!r} has different kwh for the interval ending "
                f"{pd.Timestamp(end).isoformat()}Z on lines {lines} of this file; "
                "none of them was loaded, since we cannot tell which is right"
            )
        numbers = conflicts["line"].tolist()
        raws = source.raw_lines(set(numbers))
        run.quarantine(numbers, [raws.get(number, "") for number in numbers], reasons)
    return rows[duplicates.keep_mask(len(rows))]


def _interval_minutes(rows: pd.DataFrame, remembered: np.ndarray) -> np.ndarray:
    """Each household's interval (indexed by code): the most common spacing of its readings.

    With a single reading (or an irregular spacing) the interval remembered on the household
    stands (``household.reading_interval_minutes``), else the 30-minute default. An interval
    inferred from recent readings is remembered for the next file (``_remember_intervals``).
    """
    minutes = remembered.copy()
    codes = rows["code"].to_numpy()  # rows are in key order
    ends = rows["end"].to_numpy()
    same = codes[1:] == codes[:-1]
    gaps = pd.DataFrame(
        {"code": codes[1:][same], "gap": (ends[1:] - ends[:-1])[same] / np.timedelta64(1, "m")}
    )
    common = (
        gaps.groupby(["code", "gap"]).size().reset_index(name="n")
        .sort_values(["code", "n", "gap"], ascending=[True, False, True])
        .drop_duplicates("code")
    )  # fmt: skip
    common = common[common["gap"].isin(ACCEPTED_INTERVALS)].astype({"gap": np.int64})
    minutes[common["code"].to_numpy()] = common["gap"].to_numpy()
    return minutes


def _remembered_intervals(engine: Engine, known: KnownHouseholds) -> np.ndarray:
    """Every household's remembered interval, by code; the default where none is."""
    minutes = np.full(len(known.ids), DEFAULT_INTERVAL_MINUTES, dtype=np.int64)
    with engine.connect() as connection:
        rows = connection.execute(
            select(Household.id, Household.reading_interval_minutes).where(
                Household.reading_interval_minutes.is_not(None)
            )
        ).all()
    if rows:
        ids, values = zip(*rows, strict=True)
        codes = known.ids.get_indexer(pd.Index(ids, dtype=object))
        minutes[codes[codes >= 0]] = np.asarray(values, dtype=np.int64)[codes >= 0]
    return minutes


def _remember_intervals(
    engine: Engine,
    known: KnownHouseholds,
    rows: pd.DataFrame,
    minutes: np.ndarray,
    remembered: np.ndarray,
) -> None:
    """Remember on each household of the file the interval its readings were given, where
    that changed. (A back-filled file of a former meter's readings would therefore decide the
    interval of the next single reading; the next file with two or more readings sets it right.
    The probe of the latest stored reading this replaces cost a tick 30 % of its ingest.)"""
    codes = rows["code"].to_numpy()  # in key order: each household's rows are together
    codes = codes[np.append(True, codes[1:] != codes[:-1])] if len(codes) else codes
    changed = codes[minutes[codes] != remembered[codes]]
    if not len(changed):
        return
    with engine.begin() as connection:
        for value in np.unique(minutes[changed]).tolist():
            ids = known.id_array(changed[minutes[changed] == value]).tolist()
            for start in range(0, len(ids), 1000):
                connection.execute(
                    update(Household)
                    .where(col(Household.id).in_(ids[start : start + 1000]))
                    .values(reading_interval_minutes=value)
                )


def _merge(
    run: IngestRun,
    known: KnownHouseholds,
    rows: pd.DataFrame,
    minutes: np.ndarray,
    now: datetime,
    chunk_rows: int,
) -> None:
    for start in range(0, len(rows), chunk_rows):  # rows are in key order
        part = rows.iloc[start : start + chunk_rows]
        codes = part["code"].to_numpy()
        values = {
            "household_id": known.id_array(codes),
            "interval_end": part["end"].to_numpy(),
            "kwh": part["kwh"].to_numpy(),
            "interval_minutes": minutes[codes],
        }
        _merge_chunk(run, values, now)


def _merge_chunk(run: IngestRun, values: dict[str, np.ndarray], now: datetime) -> None:
    """Merge one chunk in one transaction; count it only once that transaction has committed."""
    ingest_id = run.report.ingest_id
    counts: ChunkCounts | None = None
    if run.engine.dialect.name == "postgresql":
        try:
            with run.engine.begin() as connection:
                counts = copy_if_all_new(connection, values, now)
                if counts is None:
                    counts = merge_by_split(connection, values, ingest_id, now)
        except IntegrityError:
            # Another writer stored one of these keys after the split's probe: the upsert
            # settles it.
            counts = None
    if counts is None:
        with run.engine.begin() as connection:
            counts = merge_by_upsert(connection, values, ingest_id, now)
    report = run.report
    report.households |= counts.households
    report.rows_inserted += counts.inserted
    report.rows_corrected += counts.corrected
    report.rows_unchanged += counts.unchanged
