"""``areawatch status`` says plainly which data sources are stale, since when and for how long."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

from rich.console import Console
from typer.testing import CliRunner

from data.db import session_scope
from data.tables import SourceCursor
from tests.watch.ops.conftest import NOW
from watch.cli import app as cli_app
from watch.settings import SourceSettings
from watch.source_health import check_sources
from watch.views import collect_status, render_status, stale_source_lines


def _status_text(engine, now) -> str:  # noqa: ANN001
    out = StringIO()
    render_status(Console(file=out, width=120), collect_status(engine, now))
    return out.getvalue()


def test_status_prints_one_line_per_stale_source_with_since_and_how_long(
    engine, drop, make_resident
):
    make_resident("h1")
    meter = SourceSettings(name="meter", path=str(drop), every_minutes=30)
    tv = SourceSettings(name="tv-logs", path=str(drop), every_minutes=60)
    check_sources(engine=engine, sources=[meter, tv], now=NOW, timezone="Asia/Tokyo")
    later = NOW + timedelta(hours=2)
    report = check_sources(engine=engine, sources=[meter, tv], now=later, timezone="Asia/Tokyo")
    assert report.stale == ["meter"]  # tv-logs may go 3 h without a pull

    text = _status_text(engine, later)

    (line,) = [row for row in text.splitlines() if row.startswith("STALE SOURCE")]
    assert line == (
        f"STALE SOURCE meter: no successful pull since 2025-01-06 09:00 (2.0 h ago), "
        f"incident {report.opened[0]} (open)"
    )
    assert "tv-logs:" not in text


def test_a_recovered_source_has_no_stale_line(engine, drop):
    meter = SourceSettings(name="meter", path=str(drop), every_minutes=30)
    check_sources(engine=engine, sources=[meter], now=NOW, timezone="Asia/Tokyo")
    later = NOW + timedelta(hours=2)
    check_sources(engine=engine, sources=[meter], now=later, timezone="Asia/Tokyo")
    with session_scope(engine) as session:
        session.get(SourceCursor, "meter").last_success_at = later
    check_sources(engine=engine, sources=[meter], now=later, timezone="Asia/Tokyo")

    assert stale_source_lines(collect_status(engine, later)) == []
    assert "STALE SOURCE" not in _status_text(engine, later)


def test_the_areawatch_status_command_prints_the_stale_source_line(database, engine, drop):
    meter = SourceSettings(name="meter", path=str(drop), every_minutes=30)
    check_sources(engine=engine, sources=[meter], now=NOW, timezone="Asia/Tokyo")
    check_sources(
        engine=engine, sources=[meter], now=NOW + timedelta(hours=2), timezone="Asia/Tokyo"
    )

    # The command runs on the wall clock: how long is then counted from today, not from NOW.
    result = CliRunner().invoke(cli_app, ["status", "--database-url", database.url])

    assert result.exit_code == 0, result.output
    assert "STALE SOURCE meter: no successful pull since 2025-01-06 09:00 (" in result.output
