"""The ``areawatch`` command, driven as an operator would."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.watch.conftest import ONSET, START, set_policy, walk
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
        ["check-policy"],
        ["load-policy"],
        ["check-config"],
        ["config", "check"],
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


def test_a_policy_file_with_a_mistake_is_refused_with_the_reason(tmp_path):
    good = tmp_path / "town.toml"
    good.write_text(
        'name = "town"\n[[steps]]\nkind = "notify_resident"\nwait = 10\n', encoding="utf-8"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[[steps]]\nkind = "notify_cat"\nwait = 5\n', encoding="utf-8")
    assert runner.invoke(app, ["check-policy", str(good)]).exit_code == 0
    result = runner.invoke(app, ["check-policy", str(good), str(bad)])
    assert result.exit_code == 1
    assert "unknown step kind 'notify_cat'" in result.output


def test_a_household_gets_the_policy_its_roster_row_names_frozen_on_its_incident(
    make_loaded_app, town, tmp_path
):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "town.toml").write_text(
        'name = "town"\n[[steps]]\nkind = "notify_staff"\nwait = 10\n', encoding="utf-8"
    )
    app = make_loaded_app(policies_dir=str(policies))
    set_policy(app, town.collapsed, "town")
    incident = _collapse_incident(app)
    assert incident.policy_snapshot["name"] == "town"
    assert [s["kind"] for s in incident.policy_snapshot["steps"]] == ["notify_staff"]


def _collapse_incident(app):
    """Learn the history, live through the collapse, and return the one incident it opened."""
    from datetime import timedelta

    import pandas as pd
    from sqlmodel import Session, select

    from data.tables import Incident

    app.clock.set(START.to_pydatetime())
    walk(app, ONSET - pd.Timedelta(hours=2), timedelta(hours=12), escalate=False)
    walk(app, ONSET + pd.Timedelta(hours=10), timedelta(minutes=30), escalate=False)
    with Session(app.engine) as session:
        return session.exec(select(Incident)).one()


def test_an_organisations_policy_loaded_into_the_database_is_the_one_its_incidents_freeze(
    database, make_loaded_app, town, tmp_path
):

    url = ["--database-url", database.url]
    policy = tmp_path / "town.toml"
    policy.write_text(
        'name = "town"\n[[steps]]\nkind = "notify_family"\nwait = 20\n'
        '[[steps]]\nkind = "notify_staff"\nwait = 20\n',
        encoding="utf-8",
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n', encoding="utf-8")
    assert runner.invoke(app, ["load-policy", str(policy), *url]).exit_code == 0
    reload = runner.invoke(app, ["load-policy", str(policy), *url])
    assert "replaced" in reload.output
    assert runner.invoke(app, ["load-policy", str(bad), *url]).exit_code == 1
    elsewhere = runner.invoke(app, ["load-policy", str(policy), "--organisation", "nowhere", *url])
    assert elsewhere.exit_code == 1 and "does not exist" in elsewhere.output

    application = make_loaded_app()
    set_policy(application, town.collapsed, "town")
    incident = _collapse_incident(application)
    assert [s["kind"] for s in incident.policy_snapshot["steps"]] == [
        "notify_family",
        "notify_staff",
    ]


def test_check_config_explains_the_settings_and_reaches_the_database(database, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    config = tmp_path / "areawatch.toml"
    config.write_text(
        f'[[sources]]\nname = "meter"\nkind = "readings"\npath = "{folder}"\n', encoding="utf-8"
    )
    result = runner.invoke(
        app, ["check-config", "--config", str(config), "--database-url", database.url]
    )
    assert result.exit_code == 0, result.output
    assert "Settings are valid" in result.output
    assert "Source 'meter'" in result.output and "The database answers" in result.output
    same = runner.invoke(
        app, ["config", "check", "--config", str(config), "--database-url", database.url]
    )
    assert same.exit_code == 0 and "Settings are valid" in same.output
    unreachable = runner.invoke(
        app, ["check-config", "--database-url", "postgresql://nobody@127.0.0.1:1/none"]
    )
    assert unreachable.exit_code == 1
    assert "cannot be reached" in unreachable.output


def test_status_shows_each_sources_last_success_and_error(database, town, tmp_path):
    from datetime import UTC, datetime

    from data.db import make_engine
    from data.sources.base import record_error, record_progress

    engine = make_engine(database.url)
    record_progress(engine, source="meter", cursor="a.csv", now=datetime(2025, 1, 6, tzinfo=UTC))
    record_error(
        engine, source="catv", error="folder missing", now=datetime(2025, 1, 6, tzinfo=UTC)
    )
    result = runner.invoke(app, ["status", "--database-url", database.url])
    assert result.exit_code == 0, result.output
    assert "meter" in result.output and "catv" in result.output
    assert "folder missing" in result.output
