"""Detection's read of what arrived after each household's cursor (``data.new_readings``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

import data.new_readings as new_readings
from data.new_readings import readings_after
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

    assert found == {
        "h1": [(T + timedelta(minutes=30 * i), 0.1 * i, 30) for i in range(2, 8)],
        "h2": [
            (T + timedelta(hours=1), 0.1 + 0.2, 60),
            (T + timedelta(hours=2, microseconds=7), 12.345678901234567, 60),
        ],
        "h4": [(T - timedelta(days=40), 1.0, 30), (T + timedelta(minutes=30), 2.0, 30)],
    }
    assert all(end.utcoffset() == timedelta(0) for rows in found.values() for end, _, _ in rows)


@pytest.mark.postgres
def test_on_postgresql_the_copy_gives_what_the_query_gives(database):
    if database.backend != "postgres":
        pytest.skip("the COPY is PostgreSQL's")
    store(database.engine, ROWS)
    ids = sorted(CURSORS)

    with database.engine.connect() as connection:
        for oldest in (None, T, T + timedelta(hours=1)):
            copied = {h: rows for h, rows in new_readings._copied(connection, ids, oldest, NOW)}
            queried = dict(new_readings._queried(connection, ids, oldest, NOW))
            assert copied == queried
            assert copied  # something to compare
        assert list(new_readings._copied(connection, ["nobody"], None, NOW)) == []
