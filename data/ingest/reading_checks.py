"""The checks of one chunk of readings: which rows are bad and why, and the good rows' values.

Two ways to the same answer. ``check_text_rows`` runs the checks of ``data.ingest.parse`` over a
``Chunk``'s text, row by row. ``check_columns`` takes a ``ColumnChunk`` (Arrow columns straight
from pyarrow's CSV parser or from Parquet) and runs the very same checks once per distinct value
of each column: a day's file for a million households has 48 distinct timestamps and a few
thousand distinct kWh texts per 100,000 rows, so the Python-level work shrinks by orders of
magnitude. It gives each row what ``check_text_rows`` would, because every check depends on one
column's value only, and a row's reason is the first that applies in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data.ingest.keys import KnownHouseholds
from data.ingest.parse import (
    Reasons,
    flag_future,
    flag_unknown_households,
    parse_numbers,
    parse_timestamps,
)
from data.ingest.source import Chunk, ColumnChunk, column_text


@dataclass(frozen=True)
class CheckedReadings:
    """One chunk's verdict per row, and its values (meaningful only for the good rows)."""

    reasons: Reasons
    codes: np.ndarray  # household codes (-1: not in the roster)
    ends: np.ndarray  # interval ends, UTC datetime64[us]
    kwh: np.ndarray


#: Above this a reading is refused as implausible. A household's low-voltage supply in Japan is
#: contracted at most at about 50 kVA, 25 kWh a half-hour or 50 kWh an hour; a value far above it
#: is what a feed sends when it passes the meter's cumulative register instead of the interval's
#: use (e.g. 12345.6), which would otherwise read as a burst of activity.
MAX_PLAUSIBLE_KWH = 100.0


def _negative_energy(value: str) -> str:
    return f"negative energy: kwh {value}"


def _implausible_energy(value: str) -> str:
    return (
        f"implausible energy: kwh {value} is above {MAX_PLAUSIBLE_KWH:g} for one reading"
        " (a cumulative meter register instead of the interval's use?)"
    )


def check_text_rows(
    chunk: Chunk, known: KnownHouseholds, zone: ZoneInfo | None, now: datetime
) -> CheckedReadings:
    frame = chunk.frame
    reasons = Reasons(chunk.shape_problems)
    codes = known.codes(frame["household_id"])
    flag_unknown_households(frame["household_id"], codes, reasons)
    ends = parse_timestamps(frame["timestamp"], zone, reasons)
    kwh = parse_numbers(frame["kwh"], "kwh", reasons)
    reasons.flag_each(kwh < 0, frame["kwh"], _negative_energy)
    reasons.flag_each(kwh > MAX_PLAUSIBLE_KWH, frame["kwh"], _implausible_energy)
    flag_future(ends, now, reasons, "interval end")
    return CheckedReadings(reasons, codes, ends, kwh)


@dataclass(frozen=True)
class _Distinct:
    """A column as its distinct values' text (as ``Chunk`` holds it) and each row's index."""

    text: pd.Series
    rows: np.ndarray

    @classmethod
    def of(cls, column: pa.Array) -> _Distinct:
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()  # its dictionary may repeat or leave out values
        encoded = pc.dictionary_encode(column, null_encoding="encode")
        rows = encoded.indices.to_numpy(zero_copy_only=False)
        return cls(column_text(encoded.dictionary), rows)

    def reasons(self) -> Reasons:
        return Reasons.all_good(len(self.text))


def check_columns(
    chunk: ColumnChunk, known: KnownHouseholds, zone: ZoneInfo | None, now: datetime
) -> CheckedReadings:
    households = _Distinct.of(chunk.columns["household_id"])
    times = _Distinct.of(chunk.columns["timestamp"])
    energies = _Distinct.of(chunk.columns["kwh"])

    household_reasons = households.reasons()
    codes = known.codes(households.text)
    flag_unknown_households(households.text, codes, household_reasons)
    time_reasons = times.reasons()
    ends = parse_timestamps(times.text, zone, time_reasons)
    energy_reasons = energies.reasons()
    kwh = parse_numbers(energies.text, "kwh", energy_reasons)
    energy_reasons.flag_each(kwh < 0, energies.text, _negative_energy)
    energy_reasons.flag_each(kwh > MAX_PLAUSIBLE_KWH, energies.text, _implausible_energy)
    future_reasons = times.reasons()
    flag_future(ends, now, future_reasons, "interval end")

    reasons = Reasons.all_good(len(chunk))
    # In the order ``check_text_rows`` flags them: a row keeps the first reason that applies.
    for distinct_reasons, distinct in (
        (household_reasons, households),
        (time_reasons, times),
        (energy_reasons, energies),
        (future_reasons, times),
    ):
        if not distinct_reasons.ok.all():
            reasons.flag_rows(distinct_reasons.values[distinct.rows])
    return CheckedReadings(reasons, codes[households.rows], ends[times.rows], kwh[energies.rows])
