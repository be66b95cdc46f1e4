"""The one-shot jobs: ``pull`` over every source, and the daily maintenance."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select
from typer.testing import CliRunner

from data.ingest import ingest_readings
from data.sources import read_cursor
from data.sources.drop_folder import LOCK_NAME
from data.tables import Ingest, QuarantinedRow, ReadingCorrection
from tests.watch.ops.conftest import NOW, count_readings, reading_rows
from watch.app import App
from watch.cli import app as cli
from watch.clock import FrozenClock
from watch.jobs import maintain, pull_all
from watch.settings import MaintenanceSettings, Settings, SourceSettings


def _app(database, *sources, now=NOW, retention_days=400) -> App:
    settings = Settings(
        database_url=database.url,
        sources=tuple(sources),
        maintenance=MaintenanceSettings(retention_days=retention_days),
    )
    return App.from_settings(settings, clock=FrozenClock(now), channels={})


def test_pull_all_goes_on_past_a_failing_source(
    database, tmp_path, drop, write_file, make_resident
):
    make_resident("h1")
    write_file("meter.csv", reading_rows("h1", 3))
    missing = tmp_path / "removed-later"
    missing.mkdir()
    app = _app(
        database,
        SourceSettings(name="broken", kind="tv", path=str(missing)),
        SourceSettings(name="meter", kind="readings", path=str(drop)),
    )
    missing.rmdir()

    broken, meter = pull_all(app)

    assert broken.failed and not meter.failed
    assert meter.files_loaded == ["meter.csv"]
    assert count_readings(database.engine) == 3


def test_maintenance_deletes_only_ingests_older_than_the_retention(
    database, tmp_path, write_file, make_resident
):
    make_resident("h1")
    month_ago = NOW - timedelta(days=30)
    old = write_file("old.csv", [*reading_rows("h1", 1, month_ago), ("h1", "bad", "1")])
    ingest_readings(engine=database.engine, path=old, now=month_ago)
    resent = write_file("resent.csv", [("h1", month_ago.isoformat(), "9.99"), ("h1", "bad", "1")])
    ingest_readings(engine=database.engine, path=resent, now=NOW - timedelta(days=5))
    app = _app(database, retention_days=10)

    report = maintain(app)

    assert (report.ingests_deleted, report.quarantined_rows_deleted) == (1, 1)
    with Session(database.engine) as session:
        assert [i.source for i in session.exec(select(Ingest)).all()] == [str(resent)]
        assert len(session.exec(select(QuarantinedRow)).all()) == 1
        # The correction made by the recent ingest keeps its link.
        (correction,) = session.exec(select(ReadingCorrection)).all()
        assert correction.ingest_id is not None
    assert count_readings(database.engine) == 1


def test_maintenance_keeps_corrections_whose_ingest_it_deletes(database, write_file, make_resident):
    make_resident("h1")
    two_months_ago = NOW - timedelta(days=60)
    first = write_file("first.csv", reading_rows("h1", 1, two_months_ago))
    ingest_readings(engine=database.engine, path=first, now=two_months_ago)
    resent = write_file("resent.csv", [("h1", two_months_ago.isoformat(), "9.99")])
    ingest_readings(engine=database.engine, path=resent, now=NOW - timedelta(days=50))

    report = maintain(_app(database, retention_days=10))

    assert report.ingests_deleted == 2
    with Session(database.engine) as session:
        (correction,) = session.exec(select(ReadingCorrection)).all()
    assert correction.new_kwh == 9.99 and correction.ingest_id is None


def test_the_pull_command_fails_only_when_every_source_failed(
    database, tmp_path, drop, write_file, make_resident
):
    make_resident("h1")
    write_file("meter.csv", reading_rows("h1", 2, NOW - timedelta(days=400)))
    config = tmp_path / "areawatch.toml"
    config.write_text(
        f'[[sources]]\nname = "meter"\nkind = "readings"\npath = "{drop}"\nsettle_seconds = 0\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    args = ["pull", "--config", str(config), "--database-url", database.url]

    loaded = runner.invoke(cli, args)
    assert loaded.exit_code == 0, loaded.output
    assert "meter" in loaded.output and count_readings(database.engine) == 2

    (drop / LOCK_NAME).unlink()
    (drop / LOCK_NAME).mkdir()  # the folder cannot be locked, so it cannot be pulled
    failed = runner.invoke(cli, args)
    assert failed.exit_code == 1
    assert "IsADirectoryError" in read_cursor(database.engine, "meter").last_error
