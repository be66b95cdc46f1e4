"""The ``areawatch`` command, driven as an operator would."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from watch.cli import app

app_cli = app

runner = CliRunner()


@pytest.mark.parametrize(
    "command",
    [
        ["init"],
        ["ingest", "readings"],
        ["ingest", "tv"],
        ["ingest", "roster"],
        ["detect"],
        ["escalate"],
        ["status"],
        ["serve"],
        ["backtest"],
        ["timeline"],
        ["demo"],
    ],
)
def test_every_command_explains_itself_with_an_example(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


def test_an_operator_loads_a_roster_and_a_file_with_bad_rows_and_sees_each_reason(
    database, town, tmp_path
):
    url = ["--database-url", database.url]
    assert (
        runner.invoke(
            app, ["ingest", "roster", str(town.households), str(town.contacts), *url]
        ).exit_code
        == 0
    )
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        "household_id,timestamp,kwh\n"
        "H001,2025-01-06T00:30:00+09:00,0.12\n"
        "H001,2025-01-06T01:00:00+09:00,lots\n"
        "NOBODY,2025-01-06T01:00:00+09:00,0.1\n"
        "H002,2025-01-06T01:00:00,0.1\n"
        "H002,2025-01-06T01:30:00+09:00,-0.5\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["ingest", "readings", str(mixed), *url])
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in result.output.splitlines()
        if line.count("│") == 3
    }
    assert rows["3"].startswith("kwh 'lots' is not a number")
    assert rows["4"].startswith("unknown household")
    assert rows["5"].startswith("timestamp has no UTC offset")
    assert rows["6"].startswith("negative energy")


def test_a_file_where_nothing_could_be_read_exits_non_zero(database, town, tmp_path):
    url = ["--database-url", database.url]
    runner.invoke(app, ["ingest", "roster", str(town.households), *url])
    bad = tmp_path / "bad.csv"
    bad.write_text("household_id,timestamp,kwh\nH001,yesterday,0.1\n", encoding="utf-8")
    result = runner.invoke(app, ["ingest", "readings", str(bad), *url])
    assert result.exit_code == 1


def test_status_lists_households_without_data(database, town):
    url = ["--database-url", database.url]
    runner.invoke(app, ["ingest", "roster", str(town.households), *url])
    result = runner.invoke(app, ["status", *url])
    assert result.exit_code == 0, result.output
    assert "H001" in result.output and "never" in result.output


def test_a_mistake_in_the_settings_file_is_explained(tmp_path):
    config = tmp_path / "areawatch.toml"
    config.write_text('channel = "pigeon"\n', encoding="utf-8")
    result = runner.invoke(app, ["detect", "--config", str(config)])
    assert result.exit_code == 2
    assert "channel must be" in result.output


def test_staff_read_an_incidents_audit_trail_with_phones_masked(loaded_app, database, town):
    from datetime import timedelta

    import pandas as pd
    from sqlmodel import Session, select

    from data.tables import Incident
    from tests.watch.conftest import ONSET, START, walk

    app = loaded_app
    app.clock.set(START.to_pydatetime())
    walk(app, ONSET - pd.Timedelta(hours=2), timedelta(hours=12), escalate=False)
    walk(app, ONSET + pd.Timedelta(hours=10), timedelta(minutes=30))
    with Session(app.engine) as session:
        incident = session.exec(select(Incident)).first()
    result = runner.invoke(
        app=app_cli, args=["timeline", str(incident.id), "--database-url", database.url]
    )
    assert result.exit_code == 0, result.output
    assert f"Incident {incident.id}: {town.collapsed}" in result.output
    for kind in ("opened", "step", "message", "sent"):
        assert kind in result.output
    assert "+8190000" not in result.output
    missing = runner.invoke(app_cli, ["timeline", "999999", "--database-url", database.url])
    assert missing.exit_code == 1
