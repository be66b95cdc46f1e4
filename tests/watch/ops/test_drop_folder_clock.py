"""The drop folder judges "settled" on the file system's clock, not on the application's.

The application clock can stand anywhere (``AREAWATCH_NOW`` replays a past week for a demo or a
back-test); a file's modification time is always written by the file system's own clock. These
tests put the two far apart, both ways.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from data.sources import DropFolderSource
from tests.watch.ops.conftest import count_readings, reading_rows, set_age

# A replay of a spring morning years before any file in these tests was written.
REPLAY_NOW = datetime(2019, 4, 1, 0, 0, tzinfo=UTC)
# A clock run ahead of the file system by years (a mis-set AREAWATCH_NOW).
AHEAD_NOW = datetime(2040, 4, 1, 0, 0, tzinfo=UTC)


def _source(drop, **options) -> DropFolderSource:
    return DropFolderSource(name="meter", kind="readings", folder=drop, **options)


def test_a_settled_file_is_loaded_while_the_clock_replays_the_past(
    engine, drop, write_file, make_resident
):
    make_resident("h1")
    write_file("replay.csv", reading_rows("h1", 4, REPLAY_NOW), age=timedelta(minutes=5))

    report = _source(drop, settle_seconds=10).pull(engine=engine, now=REPLAY_NOW)

    assert report.files_waiting == []
    assert report.files_loaded == ["replay.csv"]
    assert count_readings(engine) == 4
    assert (drop / "archive" / "2019-04-01" / "replay.csv").is_file()  # the replayed day


def test_a_file_settles_by_file_system_time_while_the_replay_clock_stands_still(
    engine, drop, write_file, make_resident
):
    make_resident("h1")
    write_file("fresh.csv", reading_rows("h1", 3, REPLAY_NOW), age=timedelta(seconds=2))

    first = _source(drop, settle_seconds=10).pull(engine=engine, now=REPLAY_NOW)

    assert first.files_waiting == ["fresh.csv"] and first.files_loaded == []
    assert count_readings(engine) == 0

    # Twelve seconds pass on the file system; AREAWATCH_NOW has not moved.
    set_age(drop / "fresh.csv", timedelta(seconds=12))
    later = _source(drop, settle_seconds=10).pull(engine=engine, now=REPLAY_NOW)

    assert later.files_loaded == ["fresh.csv"]
    assert count_readings(engine) == 3


def test_a_file_still_being_written_waits_even_when_the_clock_runs_years_ahead(
    engine, drop, write_file, make_resident
):
    make_resident("h1")
    write_file("growing.csv", reading_rows("h1", 2, AHEAD_NOW), age=timedelta(0))

    report = _source(drop, settle_seconds=10).pull(engine=engine, now=AHEAD_NOW)

    assert report.files_waiting == ["growing.csv"] and report.files_loaded == []
    assert (drop / "growing.csv").exists()
    assert count_readings(engine) == 0
