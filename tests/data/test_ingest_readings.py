import gzip
import shutil
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlmodel import Session, select

from data.ingest import IngestError, ingest_readings
from data.tables import Household, Ingest, QuarantinedRow, Reading, ReadingCorrection


def utc(hour: int, minute: int = 0, day: int = 5) -> datetime:
    return datetime(2025, 1, day, hour, minute, tzinfo=UTC)


def quarantined(engine) -> dict[int, tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(QuarantinedRow)).all()
    return {row.line_number: (row.raw, row.reason) for row in rows}


def test_ingesting_the_same_file_twice_changes_nothing(
    engine, make_household, make_readings_file, stored_readings, now
):
    make_household("h1")
    make_household("h2")
    path = make_readings_file(
        [
            ["h1", "2025-01-05T07:30:00+09:00", "0.25"],
            ["h1", "2025-01-05T08:00:00+09:00", "0.5"],
            ["h2", "2025-01-05T00:00:00Z", "1.125"],
        ]
    )
    first = ingest_readings(engine=engine, path=path, now=now)
    after_first = stored_readings()
    second = ingest_readings(engine=engine, path=str(path), now=now + timedelta(hours=1))

    assert (first.rows_inserted, first.rows_unchanged) == (3, 0)
    assert first.households == {"h1", "h2"}
    assert (second.rows_read, second.rows_inserted, second.rows_unchanged) == (3, 0, 3)
    assert second.rows_corrected == 0 and second.households == set()
    assert stored_readings() == after_first
    assert after_first[0] == ("h1", utc(22, 30, day=4), 0.25, 30)


def test_a_resent_reading_with_a_new_value_replaces_it_and_records_the_correction(
    engine, make_household, make_readings_file, stored_readings, now
):
    make_household("h1")
    ingest_readings(
        engine=engine,
        path=make_readings_file(
            [["h1", "2025-01-05T00:00:00Z", "0.2"], ["h1", "2025-01-05T00:30:00Z", "0.3"]]
        ),
        now=now,
    )
    report = ingest_readings(
        engine=engine,
        path=make_readings_file([["h1", "2025-01-05T00:30:00Z", "0.9"]], name="resent.csv"),
        now=now,
    )

    assert (report.rows_corrected, report.rows_unchanged, report.rows_inserted) == (1, 0, 0)
    assert [row[2] for row in stored_readings()] == [0.2, 0.9]
    with Session(engine) as session:
        correction = session.exec(select(ReadingCorrection)).one()
    assert (correction.household_id, correction.interval_end) == ("h1", utc(0, 30))
    assert (correction.old_kwh, correction.new_kwh) == (0.3, 0.9)
    assert correction.ingest_id == report.ingest_id and correction.corrected_at == now


def test_bad_rows_are_quarantined_with_line_and_reason_while_good_rows_load(
    engine, make_household, make_readings_file, stored_readings, now
):
    make_household("h1")
    path = make_readings_file(
        [
            ["h1", "2025-01-05T00:00:00Z", "0.2"],  # line 2: good
            ["h1", "2025-01-05T00:30:00Z", "abc"],  # 3
            ["h1", "2025-01-05T01:00:00Z", "-0.1"],  # 4
            ["h1", "", "0.1"],  # 5
            ["h1", "yesterday", "0.1"],  # 6
            ["nobody", "2025-01-05T01:30:00Z", "0.1"],  # 7
            ["h1", "2025-01-06T00:30:00Z", "0.1"],  # 8: 30 min after now
            "h1,2025-01-05T02:00:00Z",  # 9
            ["h1", "2025-01-05T02:30:00Z", ""],  # 10
            ["h1", "2025-01-06T00:05:00Z", "0.4"],  # 11: good, within 5 minutes of now
        ]
    )
    report = ingest_readings(engine=engine, path=path, now=now)

    reasons = {line.line_number: line.reason for line in report.quarantined}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "not a number" in reasons[3]
    assert "negative energy" in reasons[4]
    assert "timestamp is missing" in reasons[5]
    assert "not an ISO 8601" in reasons[6]
    assert "unknown household 'nobody'" in reasons[7]
    assert "in the future" in reasons[8]
    assert "expected 3 fields, found 2" in reasons[9]
    assert "kwh is missing" in reasons[10]
    assert quarantined(engine)[3] == ("h1,2025-01-05T00:30:00Z,abc", reasons[3])
    assert (report.rows_read, report.rows_inserted, report.rows_quarantined) == (10, 2, 8)
    assert [row[2] for row in stored_readings()] == [0.2, 0.4]
    assert not report.nothing_read


def test_conflicting_duplicates_are_all_quarantined_and_identical_ones_collapse(
    engine, make_household, make_readings_file, stored_readings, now
):
    make_household("h1")
    path = make_readings_file(
        [
            ["h1", "2025-01-05T00:00:00Z", "0.2"],
            ["h1", "2025-01-05T00:30:00Z", "0.3"],
            ["h1", "2025-01-05T09:00:00+09:00", "0.20"],  # the same interval as line 2, same kwh
            ["h1", "2025-01-05T00:30:00Z", "0.4"],
        ]
    )
    report = ingest_readings(engine=engine, path=path, now=now, chunk_rows=2)

    assert [line.line_number for line in report.quarantined] == [3, 5]
    assert "different kwh" in report.quarantined[0].reason
    assert "lines 3, 5" in report.quarantined[0].reason
    assert quarantined(engine)[5][0] == "h1,2025-01-05T00:30:00Z,0.4"
    assert (report.rows_inserted, report.rows_unchanged, report.rows_quarantined) == (1, 1, 2)
    assert stored_readings() == [("h1", utc(0), 0.2, 30)]


def test_times_without_offset_are_refused_unless_a_zone_is_given(
    engine, make_household, make_readings_file, stored_readings, now
):
    make_household("h1")
    path = make_readings_file(
        [["h1", "2025-01-05T09:00:00", "0.2"], ["h1", "2025-01-05T09:30:00Z", "0.3"]]
    )
    refused = ingest_readings(engine=engine, path=path, now=now)
    assert [line.line_number for line in refused.quarantined] == [2]
    assert "no UTC offset; pass --tz" in refused.quarantined[0].reason

    accepted = ingest_readings(engine=engine, path=path, now=now, tz="Asia/Tokyo")
    assert accepted.rows_quarantined == 0 and accepted.rows_inserted == 1
    assert [row[1] for row in stored_readings()] == [utc(0), utc(9, 30)]


def test_an_unknown_zone_name_is_refused_before_reading(engine, make_readings_file, now):
    with pytest.raises(ValueError, match="unknown time zone"):
        ingest_readings(engine=engine, path=make_readings_file([]), now=now, tz="Tokyo")


@pytest.mark.parametrize("minutes", [5, 15, 60])
def test_the_interval_is_inferred_from_the_spacing_of_each_households_readings(
    engine, make_household, make_readings_file, stored_readings, now, minutes
):
    make_household("h1")
    make_household("h2")
    start = utc(0)
    times = [start + timedelta(minutes=minutes * i) for i in range(6)]
    del times[3]  # a gap does not change the most common spacing
    rows = [["h1", t.isoformat(), "0.1"] for t in times]
    rows += [["h2", (start + timedelta(minutes=30 * i)).isoformat(), "0.1"] for i in range(3)]
    ingest_readings(engine=engine, path=make_readings_file(rows), now=now)

    intervals = {(row[0], row[3]) for row in stored_readings()}
    assert intervals == {("h1", minutes), ("h2", 30)}


def test_a_single_reading_keeps_the_interval_already_stored_for_its_household(
    engine, make_household, make_readings_file, stored_readings, now
):
    make_household("h1")
    make_household("h2")
    rows = [["h1", (utc(0) + timedelta(minutes=15 * i)).isoformat(), "0.1"] for i in range(4)]
    ingest_readings(engine=engine, path=make_readings_file(rows), now=now)
    ingest_readings(
        engine=engine,
        path=make_readings_file(
            [["h1", "2025-01-05T01:00:00Z", "0.1"], ["h2", "2025-01-05T01:00:00Z", "0.1"]],
            name="next.csv",
        ),
        now=now,
    )
    latest = {row[0]: row[3] for row in stored_readings()}
    assert latest == {"h1": 15, "h2": 30}


def test_the_interval_is_remembered_on_the_household_not_looked_up_in_old_readings(
    engine, make_household, make_readings_file, stored_readings, now
):
    # A tick (one reading a household) takes the interval from the household, so it holds
    # after the readings it was inferred from are gone (retention), and a change sticks.
    make_household("h1")
    make_household("h2")
    quarter = [["h1", (utc(0) + timedelta(minutes=15 * i)).isoformat(), "0.1"] for i in range(4)]
    ingest_readings(engine=engine, path=make_readings_file(quarter), now=now)
    with Session(engine) as session:
        for reading in session.exec(select(Reading)).all():
            session.delete(reading)
        session.commit()

    tick = [["h1", utc(3).isoformat(), "0.1"], ["h2", utc(3).isoformat(), "0.1"]]
    ingest_readings(engine=engine, path=make_readings_file(tick, "tick.csv"), now=now)
    hourly = [["h1", utc(hour).isoformat(), "0.1"] for hour in (5, 6, 7)]
    ingest_readings(engine=engine, path=make_readings_file(hourly, "hourly.csv"), now=now)
    ingest_readings(
        engine=engine,
        path=make_readings_file([["h1", utc(9).isoformat(), "0.1"]], "t2.csv"),
        now=now,
    )

    minutes = {(row[0], row[1]): row[3] for row in stored_readings()}
    assert minutes[("h1", utc(3))] == 15
    assert minutes[("h2", utc(3))] == 30
    assert minutes[("h1", utc(9))] == 60
    with Session(engine) as session:
        remembered = dict(
            session.exec(select(Household.id, Household.reading_interval_minutes)).all()
        )
    assert remembered == {"h1": 60, "h2": None}  # None: the 30-minute default


def test_a_parquet_file_loads_like_the_same_csv(
    engine, make_household, make_parquet, stored_readings, now
):
    make_household("h1")
    frame = pd.DataFrame(
        {
            "household_id": ["h1", "h1", "h1"],
            "timestamp": ["2025-01-05T00:00:00Z", "2025-01-05T09:30:00+09:00", "bad"],
            "kwh": [0.2, 0.3, 0.4],
        }
    )
    report = ingest_readings(engine=engine, path=make_parquet("r.parquet", frame), now=now)
    assert [line.line_number for line in report.quarantined] == [4]
    assert quarantined(engine)[4][0] == "h1,bad,0.4"
    assert stored_readings() == [("h1", utc(0), 0.2, 30), ("h1", utc(0, 30), 0.3, 30)]


def test_a_parquet_file_with_typed_timestamps_loads(
    engine, make_household, make_parquet, stored_readings, now
):
    make_household("h1")
    frame = pd.DataFrame(
        {
            "household_id": ["h1", "h1"],
            "timestamp": pd.to_datetime(["2025-01-05T00:00:00Z", "2025-01-05T00:15:00Z"]),
            "kwh": [0.2, 0.3],
        }
    )
    ingest_readings(engine=engine, path=make_parquet("typed.parquet", frame), now=now)
    assert stored_readings() == [("h1", utc(0), 0.2, 15), ("h1", utc(0, 15), 0.3, 15)]


def test_a_gzipped_csv_is_read(engine, make_household, make_readings_file, tmp_path, now):
    make_household("h1")
    plain = make_readings_file([["h1", "2025-01-05T00:00:00Z", "0.2"]])
    packed = tmp_path / "readings.csv.gz"
    with open(plain, "rb") as source, gzip.open(packed, "wb") as target:
        shutil.copyfileobj(source, target)
    assert ingest_readings(engine=engine, path=packed, now=now).rows_inserted == 1


def test_a_missing_column_fails_the_whole_file_and_names_the_column(engine, make_csv, now):
    path = make_csv("readings.csv", ["household_id", "timestamp"], [["h1", "2025-01-05T00:00Z"]])
    with pytest.raises(IngestError, match="missing required column.*kwh"):
        ingest_readings(engine=engine, path=path, now=now)
    with Session(engine) as session:
        ingest = session.exec(select(Ingest)).one()
    assert ingest.finished_at == now and ingest.rows_read == 0


def test_an_unreadable_file_is_a_clear_error(engine, tmp_path, now):
    binary = tmp_path / "readings.csv"
    binary.write_bytes(b"household_id,timestamp,kwh\n\xff\xfe\x00bad\n")
    with pytest.raises(IngestError, match="cannot read"):
        ingest_readings(engine=engine, path=binary, now=now)
    with pytest.raises(IngestError, match="not found"):
        ingest_readings(engine=engine, path=tmp_path / "absent.csv", now=now)


def test_every_run_records_an_ingest_row_with_its_counts(
    engine, make_household, make_readings_file, now
):
    make_household("h1")
    path = make_readings_file([["h1", "2025-01-05T00:00:00Z", "0.2"], ["h1", "x", "0.3"]])
    report = ingest_readings(engine=engine, path=path, now=now)
    with Session(engine) as session:
        ingest = session.get(Ingest, report.ingest_id)
    assert (ingest.kind, ingest.source) == ("readings", str(path))
    assert (ingest.started_at, ingest.finished_at) == (now, now)
    assert (ingest.rows_read, ingest.rows_inserted, ingest.rows_quarantined) == (2, 1, 1)
    assert (ingest.rows_unchanged, ingest.rows_corrected) == (0, 0)


def test_nothing_read_is_reported_only_when_no_row_could_be_loaded(
    engine, make_household, make_readings_file, now
):
    make_household("h1")
    empty = ingest_readings(engine=engine, path=make_readings_file([]), now=now)
    all_bad = ingest_readings(
        engine=engine, path=make_readings_file([["h1", "x", "1"]], name="bad.csv"), now=now
    )
    one_good = ingest_readings(
        engine=engine,
        path=make_readings_file([["h1", "2025-01-05T00:00:00Z", "1"]], name="ok.csv"),
        now=now,
    )
    assert empty.nothing_read and all_bad.nothing_read
    assert not one_good.nothing_read


def test_a_reading_stored_through_the_orm_is_recognised_as_the_same_key(
    engine, make_household, make_readings_file, stored_readings, now
):
    make_household("h1")
    with Session(engine) as session:
        session.add(Reading(household_id="h1", interval_end=utc(0), kwh=0.2, received_at=now))
        session.commit()
    report = ingest_readings(
        engine=engine, path=make_readings_file([["h1", "2025-01-05T00:00:00Z", "0.2"]]), now=now
    )
    assert report.rows_unchanged == 1
    assert len(stored_readings()) == 1
