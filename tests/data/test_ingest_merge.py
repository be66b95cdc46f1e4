"""The merge of a chunk that mixes new, unchanged, corrected and re-spaced readings.

On PostgreSQL this goes through the split merge (new keys inserted plainly, stored ones compared);
on SQLite through the upsert. Both must give the same counts, rows and corrections.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

import data.ingest.readings as readings_module
from data.ingest import ingest_readings
from data.tables import ReadingCorrection


def stamp(hour: int, minute: int = 0) -> str:
    return datetime(2025, 1, 5, hour, minute, tzinfo=UTC).isoformat()


def corrections(engine) -> list[tuple]:
    with Session(engine) as session:
        rows = session.exec(select(ReadingCorrection).order_by(ReadingCorrection.interval_end))
        return [(c.household_id, c.interval_end.hour, c.old_kwh, c.new_kwh) for c in rows]


def test_a_chunk_of_new_unchanged_and_corrected_readings_is_counted_and_stored_once(
    engine, make_household, make_readings_file, stored_readings, now
):
    for household_id in ("h1", "h2", "h3"):
        make_household(household_id)
    first = make_readings_file(
        [["h1", stamp(1), "0.1"], ["h1", stamp(2), "0.2"], ["h2", stamp(1), "0.5"]], "first.csv"
    )
    ingest_readings(engine=engine, path=first, now=now)
    second = make_readings_file(
        [
            ["h1", stamp(1), "0.1"],  # unchanged
            ["h1", stamp(2), "0.25"],  # corrected
            ["h1", stamp(3), "0.3"],  # new, for a household with stored readings
            ["h2", stamp(1), "0.5"],  # unchanged
            ["h3", stamp(1), "0.9"],  # new household
        ],
        "second.csv",
    )

    report = ingest_readings(engine=engine, path=second, now=now)

    assert (report.rows_inserted, report.rows_corrected, report.rows_unchanged) == (2, 1, 2)
    assert report.households == {"h1", "h3"}
    assert [(h, end.hour, kwh) for h, end, kwh, _ in stored_readings()] == [
        ("h1", 1, 0.1), ("h1", 2, 0.25), ("h1", 3, 0.3), ("h2", 1, 0.5), ("h3", 1, 0.9),
    ]  # fmt: skip
    assert corrections(engine) == [("h1", 2, 0.2, 0.25)]


def test_a_reading_whose_interval_alone_changed_is_updated_without_a_correction(
    engine, make_household, make_readings_file, stored_readings, now
):
    make_household("h1")
    half_hourly = [["h1", stamp(1, 30 * i), "0.1"] for i in range(2)]
    ingest_readings(engine=engine, path=make_readings_file(half_hourly, "a.csv"), now=now)
    # The same first reading in a file spaced hourly: its interval becomes 60 minutes.
    hourly = [["h1", stamp(1), "0.1"], ["h1", stamp(2), "0.2"], ["h1", stamp(3), "0.3"]]

    report = ingest_readings(engine=engine, path=make_readings_file(hourly, "b.csv"), now=now)

    assert (report.rows_inserted, report.rows_corrected, report.rows_unchanged) == (2, 0, 1)
    minutes = {end.hour * 60 + end.minute: m for _, end, _, m in stored_readings()}
    assert minutes == {60: 60, 90: 30, 120: 60, 180: 60}
    assert corrections(engine) == []


def test_a_chunk_whose_fast_merge_hits_a_unique_violation_is_merged_again_by_upsert(
    engine, make_household, make_readings_file, stored_readings, now, monkeypatch
):
    make_household("h1")
    ingest_readings(
        engine=engine, path=make_readings_file([["h1", stamp(1), "0.1"]], "a.csv"), now=now
    )
    real_split = readings_module.merge_by_split
    attempts = []

    def split_then_collide(connection, values, ingest_id, merged_at):  # noqa: ANN001, ANN202
        # As if another ingest had stored one of these keys between the probe and the insert:
        # the work done so far is in the transaction that the error rolls back.
        attempts.append(real_split(connection, values, ingest_id, merged_at))
        raise IntegrityError("INSERT INTO reading ...", {}, Exception("unique violation"))

    monkeypatch.setattr(readings_module, "merge_by_split", split_then_collide)
    rows = [["h1", stamp(1), "0.15"], ["h1", stamp(2), "0.2"]]

    report = ingest_readings(engine=engine, path=make_readings_file(rows, "b.csv"), now=now)

    assert len(attempts) == (1 if engine.dialect.name == "postgresql" else 0)
    assert (report.rows_inserted, report.rows_corrected, report.rows_unchanged) == (1, 1, 0)
    assert [(end.hour, kwh) for _, end, kwh, _ in stored_readings()] == [(1, 0.15), (2, 0.2)]
    assert corrections(engine) == [("h1", 1, 0.1, 0.15)]


def test_a_single_reading_long_after_the_last_keeps_that_readings_interval(
    engine, make_household, make_readings_file, stored_readings, now
):
    make_household("h1")
    hourly = [["h1", f"2024-11-20T0{hour}:00:00Z", "0.1"] for hour in range(3)]
    ingest_readings(engine=engine, path=make_readings_file(hourly, "november.csv"), now=now)
    alone = [["h1", stamp(1), "0.1"]]  # six weeks later: found by the unbounded look-up

    report = ingest_readings(engine=engine, path=make_readings_file(alone, "january.csv"), now=now)

    assert report.rows_inserted == 1
    assert {end.month: minutes for _, end, _, minutes in stored_readings()} == {11: 60, 1: 60}
