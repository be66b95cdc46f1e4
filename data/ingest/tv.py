"""Set-top-box events: ``household_id,timestamp,event[,channel]``, inserted if absent.

An event is keyed by (household, time, event); a re-sent event changes nothing. Like readings,
the file is checked whole first (so duplicate keys are seen across chunks), then merged in
chunks, each in its own transaction.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine

from data.ingest.keys import KnownHouseholds, find_duplicates
from data.ingest.parse import Reasons, flag_future, flag_unknown_households, parse_timestamps
from data.ingest.report import IngestReport
from data.ingest.run import IngestRun, as_utc, ingest_run
from data.ingest.source import DEFAULT_CHUNK_ROWS, Source, open_source, require_columns
from data.ingest.staging import create_staging, drop_staging, load_staging
from data.ingest.zones import zone_or_none
from data.types import UTCDateTime

TV_EVENTS = ("power_on", "power_off", "channel", "key")
_STAGING = "ingest_staging_tvevent"
_STAGING_COLUMNS = {"household_id": "text", "at": "time", "event": "text", "channel": "text"}
_JOIN = "t.household_id = s.household_id AND t.at = s.at AND t.event = s.event"
_COUNT = text(
    f"SELECT s.household_id, SUM(CASE WHEN t.event IS NULL THEN 1 ELSE 0 END) "
    f"FROM {_STAGING} s LEFT JOIN tvevent t ON {_JOIN} GROUP BY s.household_id"
)
_INSERT = text(
    f"INSERT INTO tvevent (household_id, at, event, channel, received_at) "
    f"SELECT household_id, at, event, channel, :now FROM {_STAGING} WHERE true "
    f"ON CONFLICT (household_id, at, event) DO NOTHING"
).bindparams(bindparam("now", type_=UTCDateTime()))


def ingest_tv(
    *,
    engine: Engine,
    path: str | Path,
    now: datetime,
    tz: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> IngestReport:
    """Load a TV-event file idempotently; parameters and errors as for ``ingest_readings``."""
    now = as_utc(now)
    zone = zone_or_none(tz)
    with ingest_run(engine=engine, kind="tv", path=path, now=now) as run:
        source = open_source(path, chunk_rows=chunk_rows)
        require_columns(source, ("household_id", "timestamp", "event"))
        known = KnownHouseholds.load(engine)
        events = _read_good_rows(run, source, known, zone, now)
        duplicates = find_duplicates(events, ["code", "at", "event"], ["channel"])
        run.report.rows_unchanged += len(duplicates.repeats)
        _quarantine_conflicts(run, source, events.iloc[duplicates.conflicting])
        events = events[duplicates.keep_mask(len(events))].sort_values(["code", "at"])
        for start in range(0, len(events), chunk_rows):
            with engine.begin() as connection:
                _merge_chunk(run, connection, known, events.iloc[start : start + chunk_rows], now)
    return run.report


def _read_good_rows(
    run: IngestRun,
    source: Source,
    known: KnownHouseholds,
    zone: ZoneInfo | None,
    now: datetime,
) -> pd.DataFrame:
    parts = []
    has_channel = "channel" in source.columns
    for chunk in source.chunks():
        run.report.rows_read += len(chunk)
        frame = chunk.frame
        reasons = Reasons(chunk.shape_problems)
        codes = known.codes(frame["household_id"])
        flag_unknown_households(frame["household_id"], codes, reasons)
        at = parse_timestamps(frame["timestamp"], zone, reasons)
        event = frame["event"].str.lower()
        reasons.flag_each(
            ~event.isin(TV_EVENTS).to_numpy(),
            frame["event"],
            lambda value: f"unknown event {value!r} (expected one of {', '.join(TV_EVENTS)})",
        )
        channel = frame["channel"] if has_channel else pd.Series("", index=frame.index, dtype="str")
        reasons.flag((channel.str.len() > 32).to_numpy(), "channel is longer than 32 characters")
        flag_future(at, now, reasons, "event time")
        good = run.quarantine_chunk(chunk, reasons)
        parts.append(
            pd.DataFrame(
                {
                    "code": codes[good].astype(np.int32),
                    "at": at[good],
                    "event": event[good].to_numpy(),
                    "channel": channel[good].to_numpy(),
                    "line": chunk.line_numbers[good],
                }
            )
        )
    columns = ["code", "at", "event", "channel", "line"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _quarantine_conflicts(run: IngestRun, source: Source, conflicts: pd.DataFrame) -> None:
    if conflicts.empty:
        return
    numbers = sorted(conflicts["line"].tolist())
    raws = source.raw_lines(set(numbers))
    reason = (
        "the same event at the same time appears with different channels in this file; "
        "none of them was loaded, since we cannot tell which is right"
    )
    run.quarantine(numbers, [raws.get(number, "") for number in numbers], [reason] * len(numbers))


def _merge_chunk(
    run: IngestRun,
    connection: Connection,
    known: KnownHouseholds,
    events: pd.DataFrame,
    now: datetime,
) -> None:
    channel = events["channel"].to_numpy(dtype=object)
    values = {
        "household_id": known.id_array(events["code"].to_numpy()),
        "at": events["at"].to_numpy(),
        "event": events["event"].to_numpy(dtype=object),
        "channel": np.where(channel == "", None, channel),
    }
    create_staging(connection, _STAGING, _STAGING_COLUMNS)
    load_staging(connection, _STAGING, _STAGING_COLUMNS, values)
    inserted = 0
    for household_id, new in connection.execute(_COUNT):
        if new:
            inserted += int(new)
            run.report.households.add(household_id)
    connection.execute(_INSERT, {"now": now})
    drop_staging(connection, _STAGING)
    run.report.rows_inserted += inserted
    run.report.rows_unchanged += len(events) - inserted
