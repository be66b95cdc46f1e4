"""Detection's read of what arrived after each household's cursor (``data.new_readings``)."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlmodel import Session

import data.new_readings as new_readings
from data.new_readings import NO_READINGS, ReadingColumns, readings_after
from data.tables import Reading

T = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
NOW = T + timedelta(hours=6)


def store(engine, rows) -> None:
    with Session(engine) as session:
        for household_id, end, kwh, minutes in rows:
            session.add(
                Reading(
                    household_id=household_id,
                    interval_end=end,
                    kwh=kwh,
                    interval_minutes=minutes,
                    received_at=end,
                )
            )
        session.commit()


ROWS = [
    # h1: half-hourly, two before its cursor.
    *[("h1", T + timedelta(minutes=30 * i), 0.1 * i, 30) for i in range(8)],
    # h2: hourly, a value that is no short decimal, an end off the half-hour to the microsecond.
    ("h2", T + timedelta(hours=1), 0.1 + 0.2, 60),
    ("h2", T + timedelta(hours=2, microseconds=7), 12.345678901234567, 60),
    # h3: one reading after ``now`` (not yet due) and one before its cursor only.
    ("h3", T, 0.5, 30),
    ("h3", NOW + timedelta(minutes=30), 0.5, 30),
    # h4: never scored (cursor None): everything up to now.
    ("h4", T - timedelta(days=40), 1.0, 30),
    ("h4", T + timedelta(minutes=30), 2.0, 30),
]
CURSORS = {"h1": T + timedelta(minutes=30), "h2": T, "h3": T, "h4": None, "h5": T}


def test_each_household_gets_its_readings_after_its_cursor_up_to_now(engine):
    store(engine, ROWS)

    with engine.connect() as connection:
        found = readings_after(connection, CURSORS, NOW)

    assert {household: list(columns) for household, columns in found.items()} == {
        "h1": [(T + timedelta(minutes=30 * i), 0.1 * i, 30) for i in range(2, 8)],
        "h2": [
            (T + timedelta(hours=1), 0.1 + 0.2, 60),
            (T + timedelta(hours=2, microseconds=7), 12.345678901234567, 60),
        ],
        "h4": [(T - timedelta(days=40), 1.0, 30), (T + timedelta(minutes=30), 2.0, 30)],
    }
    assert all(end.utcoffset() == timedelta(0) for rows in found.values() for end, _, _ in rows)
    assert found["h2"].end_us[1] - found["h2"].end_us[0] == 3_600_000_007  # exact microseconds
    assert found["h4"].first_end == T - timedelta(days=40)


def test_each_household_s_columns_are_views_of_one_batch_array(engine):
    """Zero copy: a household costs three slices, whether or not cursors differ in a batch."""
    store(engine, ROWS)

    with engine.connect() as connection:
        for cursors in (CURSORS, {"h1": T, "h2": T, "h4": T}):
            found = readings_after(connection, cursors, NOW)
            assert len(found) == 3
            for name in ("end_us", "kwh", "minutes"):
                bases = [getattr(columns, name).base for columns in found.values()]
                assert bases[0] is not None and all(b is bases[0] for b in bases), name


def test_a_household_s_columns_pickle_only_their_own_rows():
    batch = ReadingColumns(
        np.arange(100_000, dtype=np.int64) * 1_800_000_000,
        np.full(100_000, 0.25),
        np.full(100_000, 30, dtype=np.int64),
    )
    one = batch.take(slice(48, 96))

    copied = pickle.loads(pickle.dumps(one, protocol=pickle.HIGHEST_PROTOCOL))

    assert copied == one and list(copied) == list(one)
    assert len(pickle.dumps(one, protocol=pickle.HIGHEST_PROTOCOL)) < 2_000


def test_columns_iterate_as_the_rows_they_were_built_from():
    rows = [
        (T + timedelta(minutes=30), 0.1 + 0.2, 30),
        (T + timedelta(hours=2, microseconds=7), 12.345678901234567, 60),
    ]

    columns = ReadingColumns.from_rows(rows)

    assert list(columns) == rows
    assert len(columns) == 2 and columns and not NO_READINGS and len(NO_READINGS) == 0
    assert columns.first_end == rows[0][0]
    assert ReadingColumns.of(columns) is columns
    assert ReadingColumns.of(rows) == columns
    assert columns != ReadingColumns.from_rows(rows[:1])
    with pytest.raises(ValueError, match="one value per reading"):
        ReadingColumns(columns.end_us, columns.kwh[:1], columns.minutes)


@pytest.mark.postgres
def test_on_postgresql_the_copy_gives_what_the_query_gives(database):
    if database.backend != "postgres":
        pytest.skip("the COPY is PostgreSQL's")
    store(database.engine, ROWS)
    ids = sorted(CURSORS)

    with database.engine.connect() as connection:
        for oldest in (None, T, T + timedelta(hours=1)):
            copied = new_readings._copied(connection, ids, oldest, NOW)
            queried = new_readings._queried(connection, ids, oldest, NOW)
            assert copied.households == queried.households
            np.testing.assert_array_equal(copied.starts, queried.starts)
            assert copied.columns == queried.columns
            assert copied.households  # something to compare
        nothing = new_readings._copied(connection, ["nobody"], None, NOW)
        assert nothing.households == [] and not nothing.columns
