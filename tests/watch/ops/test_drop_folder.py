"""The drop folder: complete files loaded once and archived, bad ones rejected with reasons."""

from __future__ import annotations

import fcntl
from datetime import timedelta

import pandas as pd
from sqlmodel import Session

from data.ingest import ingest_readings
from data.sources import DropFolderSource, read_cursor, source_health
from data.sources.drop_folder import LOCK_NAME
from tests.watch.ops.conftest import NOW, count_readings, reading_rows, set_age


def _source(drop, **options) -> DropFolderSource:
    return DropFolderSource(name="meter", kind="readings", folder=drop, **options)


def test_a_complete_file_is_loaded_and_archived_under_its_local_date(
    engine, drop, write_file, make_resident
):
    make_resident("h1")
    write_file("meter-0106.csv", reading_rows("h1", 4))

    report = _source(drop).pull(engine=engine, now=NOW)

    assert report.files_loaded == ["meter-0106.csv"]
    assert report.rows_inserted == 4 and not report.failed
    assert count_readings(engine) == 4
    # 00:00 UTC is 09:00 on the 6th in Tokyo.
    assert (drop / "archive" / "2025-01-06" / "meter-0106.csv").is_file()
    assert not (drop / "meter-0106.csv").exists()


def test_gzipped_csv_and_parquet_files_are_read_too(engine, drop, write_file, make_resident):
    make_resident("h1")
    write_file("a.csv.gz", reading_rows("h1", 2))
    rows = reading_rows("h1", 2, NOW - timedelta(hours=2))
    frame = pd.DataFrame(rows, columns=["household_id", "timestamp", "kwh"])
    frame.to_parquet(drop / "b.parquet", index=False)
    set_age(drop / "b.parquet", timedelta(minutes=5))

    report = _source(drop).pull(engine=engine, now=NOW)

    assert sorted(report.files_loaded) == ["a.csv.gz", "b.parquet"]
    assert count_readings(engine) == 4


def test_files_still_being_written_are_left_for_the_next_pull(
    engine, drop, write_file, make_resident
):
    make_resident("h1")
    write_file("upload.csv.part", reading_rows("h1", 1))
    write_file("upload.csv.tmp", reading_rows("h1", 1))
    write_file(".upload.csv", reading_rows("h1", 1))
    write_file("notes.txt", reading_rows("h1", 1))
    write_file("fresh.csv", reading_rows("h1", 3), age=timedelta(seconds=4))

    first = _source(drop, settle_seconds=10).pull(engine=engine, now=NOW)

    assert first.files_loaded == [] and first.files_waiting == ["fresh.csv"]
    assert count_readings(engine) == 0
    for name in ("upload.csv.part", "upload.csv.tmp", ".upload.csv", "notes.txt", "fresh.csv"):
        assert (drop / name).exists()

    set_age(drop / "fresh.csv", timedelta(seconds=4 + 7))  # seven seconds on, untouched
    later = _source(drop, settle_seconds=10).pull(engine=engine, now=NOW + timedelta(seconds=7))

    assert later.files_loaded == ["fresh.csv"]
    assert count_readings(engine) == 3
    assert (drop / "upload.csv.part").exists()


def test_a_file_with_no_loadable_row_is_rejected_with_the_reasons(
    engine, drop, write_file, make_resident
):
    make_resident("h1")
    write_file("garbled.csv", [("h1", "not a time", "0.2"), ("nobody", NOW.isoformat(), "0.1")])

    report = _source(drop).pull(engine=engine, now=NOW)

    assert report.files_rejected == ["garbled.csv"] and report.files_loaded == []
    assert (drop / "rejected" / "garbled.csv").is_file()
    text = (drop / "rejected" / "garbled.csv.report.txt").read_text(encoding="utf-8")
    assert "no row could be loaded" in text
    assert "line 2:" in text and "line 3:" in text


def test_a_file_without_the_required_columns_is_rejected(engine, drop, write_file):
    write_file("wrong.csv", [("x", "y")], header=("meter", "value"))

    report = _source(drop).pull(engine=engine, now=NOW)

    assert report.files_rejected == ["wrong.csv"]
    text = (drop / "rejected" / "wrong.csv.report.txt").read_text(encoding="utf-8")
    assert "missing required column" in text
    with Session(engine) as session:
        (health,) = source_health(session)
    assert health.last_error.startswith("rejected wrong.csv: ")
    assert health.last_error_at == NOW


def test_a_file_with_some_bad_rows_is_archived_and_its_bad_rows_quarantined(
    engine, drop, write_file, make_resident
):
    make_resident("h1")
    write_file("mixed.csv", [*reading_rows("h1", 2), ("h1", "never", "1")])

    report = _source(drop).pull(engine=engine, now=NOW)

    assert report.files_loaded == ["mixed.csv"] and report.rows_quarantined == 1
    assert count_readings(engine) == 2


def test_a_crash_between_ingest_and_move_loads_nothing_twice(
    engine, drop, write_file, make_resident
):
    make_resident("h1")
    path = write_file("meter.csv", reading_rows("h1", 6))
    # The previous pull committed the ingest, then died before moving the file.
    ingest_readings(engine=engine, path=path, now=NOW)

    report = _source(drop).pull(engine=engine, now=NOW + timedelta(minutes=30))

    assert report.files_loaded == ["meter.csv"]
    assert report.rows_inserted == 0 and report.rows_corrected == 0
    assert count_readings(engine) == 6
    assert list(drop.glob("*.csv")) == []


def test_the_cursor_and_health_record_the_last_file_and_success(
    engine, drop, write_file, make_resident
):
    make_resident("h1")
    write_file("first.csv", reading_rows("h1", 1), age=timedelta(minutes=9))
    write_file("second.csv", reading_rows("h1", 1, NOW - timedelta(hours=1)))

    report = _source(drop).pull(engine=engine, now=NOW)

    assert report.files_loaded == ["first.csv", "second.csv"]  # oldest first
    cursor = read_cursor(engine, "meter")
    assert cursor.cursor == "second.csv"
    assert cursor.last_success_at == NOW and cursor.last_error is None
    empty = _source(drop).pull(engine=engine, now=NOW + timedelta(minutes=30))
    assert empty.files_loaded == []
    assert read_cursor(engine, "meter").last_success_at == NOW + timedelta(minutes=30)


def test_a_missing_folder_fails_the_pull_and_is_recorded(engine, tmp_path):
    report = _source(tmp_path / "gone").pull(engine=engine, now=NOW)

    assert report.failed and "FileNotFoundError" in report.error
    with Session(engine) as session:
        (health,) = source_health(session)
    assert health.source == "meter" and health.last_success_at is None
    assert health.last_error_at == NOW


def test_a_pull_overlapping_another_on_the_same_folder_does_nothing(
    engine, drop, write_file, make_resident
):
    make_resident("h1")
    write_file("meter.csv", reading_rows("h1", 2))
    with open(drop / LOCK_NAME, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        report = _source(drop).pull(engine=engine, now=NOW)
    assert report.busy and report.files_loaded == [] and not report.failed
    assert (drop / "meter.csv").exists()


def test_a_file_delivered_again_under_the_same_name_keeps_both_copies(
    engine, drop, write_file, make_resident
):
    make_resident("h1")
    write_file("daily.csv", reading_rows("h1", 2))
    _source(drop).pull(engine=engine, now=NOW)
    write_file("daily.csv", reading_rows("h1", 3))  # a corrected re-send

    report = _source(drop).pull(engine=engine, now=NOW)

    assert report.files_loaded == ["daily.csv"] and report.rows_inserted == 1
    archived = sorted(p.name for p in (drop / "archive" / "2025-01-06").iterdir())
    assert archived == ["daily-1.csv", "daily.csv"]
