"""PostgreSQL: a chunk with nothing stored goes into ``reading`` by COPY, else by the merge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

import data.ingest.readings as readings_module
from data.ingest import ingest_readings
from data.tables import Reading, ReadingCorrection

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(database):
    if database.backend != "postgres":
        pytest.skip("the COPY into reading is PostgreSQL's")
    return database.engine


def stamp(hour: int, minute: int = 0) -> str:
    return (datetime(2025, 1, 5, hour, tzinfo=UTC) + timedelta(minutes=minute)).isoformat()


def test_a_first_load_is_copied_into_reading_without_the_merge(
    engine, make_household, make_readings_file, stored_readings, now, monkeypatch
):
    make_household("h1")
    make_household("h2")

    def no_merge(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a chunk with nothing stored was merged")

    monkeypatch.setattr(readings_module, "merge_by_split", no_merge)
    rows = [["h1", stamp(1, 30 * i), f"0.{i}"] for i in range(4)] + [["h2", stamp(3), "1.5"]]

    report = ingest_readings(engine=engine, path=make_readings_file(rows), now=now, chunk_rows=3)

    assert (report.rows_inserted, report.rows_unchanged, report.households) == (5, 0, {"h1", "h2"})
    assert stored_readings()[:2] == [
        ("h1", datetime(2025, 1, 5, 1, 0, tzinfo=UTC), 0.0, 30),
        ("h1", datetime(2025, 1, 5, 1, 30, tzinfo=UTC), 0.1, 30),
    ]
    with Session(engine) as session:
        received = set(session.exec(select(Reading.received_at)).all())
    assert received == {now}


def test_a_chunk_touching_stored_readings_is_refused_by_the_copy_and_merged_in_its_transaction(
    engine, make_household, make_readings_file, stored_readings, now, monkeypatch
):
    make_household("h1")
    ingest_readings(engine=engine, path=make_readings_file([["h1", stamp(2), "0.2"]]), now=now)
    # h1's 02:00 reading is stored: the COPY meets it, its savepoint is rolled back, and the
    # split merge runs in the same transaction (the upsert is only for a failed transaction).
    copies = []
    copy = readings_module.copy_if_all_new
    monkeypatch.setattr(
        readings_module, "copy_if_all_new", lambda *args: copies.append(copy(*args)) or copies[-1]
    )

    def no_upsert(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the chunk's transaction failed")

    monkeypatch.setattr(readings_module, "merge_by_upsert", no_upsert)
    rows = [["h1", stamp(1), "0.1"], ["h1", stamp(2), "0.25"], ["h1", stamp(3), "0.3"]]

    report = ingest_readings(engine=engine, path=make_readings_file(rows, "next.csv"), now=now)

    assert copies == [None]
    assert (report.rows_inserted, report.rows_corrected) == (2, 1)
    assert [kwh for _, _, kwh, _ in stored_readings()] == [0.1, 0.25, 0.3]
    with Session(engine) as session:
        correction = session.exec(select(ReadingCorrection)).one()
    assert (correction.old_kwh, correction.new_kwh) == (0.2, 0.25)


def test_a_resent_file_is_refused_by_the_copy_and_changes_nothing(
    engine, make_household, make_readings_file, stored_readings, now
):
    make_household("h1")
    make_household("h2")
    rows = [["h1", stamp(1, 30 * i), f"0.{i}"] for i in range(4)] + [["h2", stamp(3), "1.5"]]
    path = make_readings_file(rows)
    ingest_readings(engine=engine, path=path, now=now, chunk_rows=2)
    before = stored_readings()

    again = ingest_readings(engine=engine, path=path, now=now + timedelta(hours=1), chunk_rows=2)

    assert (again.rows_inserted, again.rows_corrected, again.rows_unchanged) == (0, 0, 5)
    assert stored_readings() == before
