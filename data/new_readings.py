"""Reading back what arrived after each household's cursor, for detection.

Detection asks, for a batch of households, every reading after the household's cursor up to
``now``, grouped by household in time order. On PostgreSQL the rows come out by
``COPY (SELECT ...) TO STDOUT`` and pyarrow parses them as columns: fetching them as Python rows
cost about 10 µs a row, a third of what a 100,000-household tick spent reading its readings
back, and most of what a daily batch does (48 rows a household). Elsewhere, a plain query.

Each household's readings stay columns (``ReadingColumns``: views of the batch's arrays) all the
way to the slot matrix the batch path scores (``watch.slots.slot_kwh``): building a datetime and
a tuple per reading, then summing them into slots one at a time in Python, was about a third of
a 100,000-household daily detection.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from sqlalchemy import String, any_, literal
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlmodel import col, select

from data.tables import Reading

#: One reading: (interval end, kWh, interval minutes).
Row = tuple[datetime, float, int]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_BEFORE_ANYTHING = np.iinfo(np.int64).min  # the cursor of a household never scored

# Interval ends as integer microseconds: exact, where seconds as a double would round.
_COPY = (
    "COPY (SELECT household_id, (extract(epoch FROM interval_end) * 1000000)::bigint,"
    " kwh, interval_minutes FROM reading WHERE household_id = ANY(%s)"
    " AND interval_end > %s AND interval_end <= %s"
    " ORDER BY household_id, interval_end) TO STDOUT (FORMAT csv)"
)
_COLUMNS = pa.schema(
    [
        ("household_id", pa.string()),
        ("end_us", pa.int64()),
        ("kwh", pa.float64()),
        ("minutes", pa.int64()),
    ]
)


def epoch_us(when: datetime) -> int:
    """``when`` (timezone-aware) as integer microseconds since the Unix epoch: exact.

    >>> epoch_us(datetime(1970, 1, 1, 0, 0, 1, 7, tzinfo=UTC))
    1000007
    """
    return (when - _EPOCH) // _MICROSECOND


def from_epoch_us(microseconds: int) -> datetime:
    """The UTC time ``microseconds`` after the Unix epoch (``epoch_us``'s inverse).

    >>> from_epoch_us(1000007).isoformat()
    '1970-01-01T00:00:01.000007+00:00'
    """
    return _EPOCH + timedelta(microseconds=microseconds)


class ReadingColumns:
    """One household's readings in time order, as three equal-length numpy columns.

    ``end_us`` (int64): interval ends, microseconds since the epoch (exact); ``kwh`` (float64);
    ``minutes`` (int64): interval lengths. Built by ``readings_after`` as views of its batch's
    arrays, so a household costs three slices, not a tuple and a datetime per reading. It
    pickles (only its own rows), as ``HouseholdJob`` travels to Dask workers.

    The one-at-a-time path may still treat it as the rows it replaces: iterating yields
    ``(end, kwh, minutes)`` tuples (built as they are asked for), and ``len`` and truth are the
    number of readings.

    >>> t = datetime(2025, 1, 6, 7, 30, tzinfo=UTC)
    >>> columns = ReadingColumns.from_rows([(t, 0.25, 30), (t + timedelta(hours=1), 0.5, 60)])
    >>> len(columns), bool(columns), bool(NO_READINGS), columns.first_end.isoformat()
    (2, True, False, '2025-01-06T07:30:00+00:00')
    >>> [(end.isoformat(), kwh, minutes) for end, kwh, minutes in columns][1]
    ('2025-01-06T08:30:00+00:00', 0.5, 60)
    """

    __slots__ = ("end_us", "kwh", "minutes")

    def __init__(self, end_us: np.ndarray, kwh: np.ndarray, minutes: np.ndarray) -> None:
        # ``asarray`` does not copy what already has the dtype: the batch's views stay views.
        self.end_us = np.asarray(end_us, dtype=np.int64)
        self.kwh = np.asarray(kwh, dtype=np.float64)
        self.minutes = np.asarray(minutes, dtype=np.int64)
        if not len(self.end_us) == len(self.kwh) == len(self.minutes):
            raise ValueError("the three columns must have one value per reading each")

    @classmethod
    def from_rows(cls, rows: Iterable[Row]) -> ReadingColumns:
        """From ``(end, kwh, minutes)`` rows (ends timezone-aware), as the plain query gives."""
        rows = list(rows)
        return cls(
            np.array([epoch_us(end) for end, _, _ in rows], dtype=np.int64),
            np.array([kwh for _, kwh, _ in rows], dtype=np.float64),
            np.array([minutes for _, _, minutes in rows], dtype=np.int64),
        )

    @classmethod
    def of(cls, readings: ReadingColumns | Iterable[Row]) -> ReadingColumns:
        """``readings`` as columns: as they are if they already are, else from rows."""
        return readings if isinstance(readings, ReadingColumns) else cls.from_rows(readings)

    @property
    def first_end(self) -> datetime:
        """The end of the earliest reading (``IndexError`` if there is none)."""
        return from_epoch_us(int(self.end_us[0]))

    def __len__(self) -> int:
        return len(self.end_us)

    def __bool__(self) -> bool:
        return len(self.end_us) > 0

    def __iter__(self) -> Iterator[Row]:
        ends, kwh, minutes = self.end_us.tolist(), self.kwh.tolist(), self.minutes.tolist()
        for end, energy, length in zip(ends, kwh, minutes, strict=True):
            yield from_epoch_us(end), energy, length

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReadingColumns):
            return NotImplemented
        return (
            np.array_equal(self.end_us, other.end_us)
            and np.array_equal(self.kwh, other.kwh)
            and np.array_equal(self.minutes, other.minutes)
        )

    __hash__ = None  # the arrays can change

    def __repr__(self) -> str:
        return f"ReadingColumns({len(self)} readings)"

    def take(self, which: np.ndarray | slice) -> ReadingColumns:
        """The readings selected by ``which`` (a slice gives views, a mask copies)."""
        # Not through ``__init__``: these columns are already checked, and a tick takes one
        # household's slice 100,000 times (0.3 µs a household instead of 0.8).
        taken = object.__new__(ReadingColumns)
        taken.end_us, taken.kwh, taken.minutes = (
            self.end_us[which],
            self.kwh[which],
            self.minutes[which],
        )
        return taken


#: What a household with no new readings has.
NO_READINGS = ReadingColumns(
    np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64)
)
for _column in (NO_READINGS.end_us, NO_READINGS.kwh, NO_READINGS.minutes):
    _column.flags.writeable = False  # shared by every household without readings


class _Batch(NamedTuple):
    """A statement's readings in (household, time) order: the batch's columns, and each
    household that has rows with the index of its first row."""

    households: list[str]
    starts: np.ndarray
    columns: ReadingColumns


_NOTHING = _Batch([], np.empty(0, dtype=np.int64), NO_READINGS)


def one_of(column, ids: list[str], dialect: str):  # noqa: ANN001, ANN201
    """``column IN ids``; on PostgreSQL as ``= ANY(array)``: one parameter, so the statement is
    the same text every time (an ``IN`` of 500 literals was compiled and parsed anew for each
    batch: 2 of the 3.4 s a 30,000-household tick spent reading)."""
    if dialect == "postgresql":
        return column == any_(literal(ids, type_=postgresql.ARRAY(String)))
    return col(column).in_(ids)


def oldest_cursor(cursors: dict[str, datetime | None]) -> datetime | None:
    """The earliest cursor of a batch, the lower bound of its time range; None when one of
    its households was never scored (then everything up to ``now`` is read)."""
    if not cursors or any(cursor is None for cursor in cursors.values()):
        return None
    return min(cursors.values())


def readings_after(
    connection: Connection, cursors: dict[str, datetime | None], now: datetime
) -> dict[str, ReadingColumns]:
    """Each household's readings ending after its cursor (``None``: from the first) and at or
    before ``now``, in time order; households with none are left out."""
    ids = sorted(cursors)
    oldest = oldest_cursor(cursors)
    read = _copied if connection.dialect.name == "postgresql" else _queried
    return _by_household(read(connection, ids, oldest, now), cursors)


def _by_household(batch: _Batch, cursors: dict[str, datetime | None]) -> dict[str, ReadingColumns]:
    """Each household's own rows of ``batch``, those after its own cursor (the statement read
    from the batch's oldest), as views of the batch's columns."""
    columns, starts = batch.columns, batch.starts
    counts = np.diff(np.append(starts, len(columns)))
    # A batch's households share a few cursors at most: each is converted once.
    microseconds = {
        cursor: _BEFORE_ANYTHING if cursor is None else epoch_us(cursor)
        for cursor in set(cursors.values())
    }
    own = np.array([microseconds[cursors[h]] for h in batch.households], dtype=np.int64)
    after = columns.end_us > np.repeat(own, counts)
    if not after.all():  # some households' cursors are ahead of the batch's oldest
        counts = np.add.reduceat(after, starts)  # counts (a bool sum is an int)
        columns = columns.take(after)
        starts = np.cumsum(counts) - counts
    return {
        household_id: columns.take(slice(start, start + count))
        for household_id, start, count in zip(
            batch.households, starts.tolist(), counts.tolist(), strict=True
        )
        if count
    }


def _queried(
    connection: Connection, ids: list[str], oldest: datetime | None, now: datetime
) -> _Batch:
    query = select(
        Reading.household_id, Reading.interval_end, Reading.kwh, Reading.interval_minutes
    ).where(one_of(Reading.household_id, ids, connection.dialect.name), Reading.interval_end <= now)
    if oldest is not None:
        query = query.where(Reading.interval_end > oldest)
    households: list[str] = []
    starts: list[int] = []
    rows: list[Row] = []
    # Core rows, not ORM loading: these are plain columns, and there are millions.
    for household_id, end, kwh, minutes in connection.execute(
        query.order_by(Reading.household_id, Reading.interval_end)
    ):
        if not households or households[-1] != household_id:
            households.append(household_id)
            starts.append(len(rows))
        rows.append((end, kwh, minutes))
    return _Batch(households, np.array(starts, dtype=np.int64), ReadingColumns.from_rows(rows))


def _copied(
    connection: Connection, ids: list[str], oldest: datetime | None, now: datetime
) -> _Batch:
    buffer = io.BytesIO()
    with connection.connection.driver_connection.cursor() as cursor:
        after = oldest if oldest is not None else datetime.min.replace(tzinfo=now.tzinfo)
        with cursor.copy(_COPY, (ids, after, now)) as copy:
            for block in copy:
                buffer.write(block)
    if not buffer.tell():
        return _NOTHING
    buffer.seek(0)
    table = pcsv.read_csv(
        buffer,
        read_options=pcsv.ReadOptions(column_names=_COLUMNS.names),
        convert_options=pcsv.ConvertOptions(column_types=_COLUMNS),
    ).combine_chunks()
    # Where the household changes, compared by arrow: no Python string per row.
    households = table["household_id"].chunk(0)
    changed = pc.not_equal(households[1:], households[:-1]).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.append(True, changed))
    return _Batch(
        households.take(pa.array(starts)).to_pylist(),
        starts,
        ReadingColumns(
            table["end_us"].chunk(0).to_numpy(),
            table["kwh"].chunk(0).to_numpy(),
            table["minutes"].chunk(0).to_numpy(),
        ),
    )
