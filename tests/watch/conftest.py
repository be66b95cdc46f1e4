"""Fixtures for the application tests: a small simulated town, written to files like a utility's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from data.synthetic import inject_incident, simulate_households, write_csv
from notify.channels.memory import MemoryChannel
from watch.app import App
from watch.clock import FrozenClock
from watch.settings import Settings

START = pd.Timestamp("2025-01-06 00:00", tz="Asia/Tokyo")
DAYS = 21
ONSET = START + pd.Timedelta(days=18, hours=6)  # a Friday morning: the routine never starts


@dataclass
class Town:
    folder: Path
    readings: Path
    tv: Path
    households: Path
    contacts: Path
    collapsed: str
    onset: pd.Timestamp


@pytest.fixture(scope="session")
def town(tmp_path_factory) -> Town:
    """Three residents for three weeks; the first one stops moving on day 19 at 06:00."""
    folder = tmp_path_factory.mktemp("town")
    readings, tv, households, contacts = simulate_households(3, START, DAYS, seed=11)
    collapsed = households["household_id"].iloc[0]
    rng = __import__("numpy").random.default_rng(5)
    readings, tv = inject_incident(readings, tv, collapsed, ONSET, "quiet", rng)
    paths = {name: folder / f"{name}.csv" for name in ("readings", "tv", "households", "contacts")}
    write_csv(readings, paths["readings"])
    write_csv(tv, paths["tv"])
    write_csv(households, paths["households"])
    write_csv(contacts, paths["contacts"])
    return Town(folder, collapsed=collapsed, onset=ONSET, **paths)


@pytest.fixture
def channel() -> MemoryChannel:
    return MemoryChannel()


@pytest.fixture
def make_loaded_app(database, town, channel):
    """An App on the test database (settings may be overridden) with the town ingested."""

    def make(kinds=("households", "contacts", "readings", "tv"), **settings) -> App:
        clock = FrozenClock((START + pd.Timedelta(days=DAYS, hours=1)).to_pydatetime())
        app = App.from_settings(
            Settings(database_url=database.url, **settings),
            clock=clock,
            channels={"sms": channel, "console": channel},
        )
        files = {
            "households": ("roster", town.households),
            "contacts": ("roster", town.contacts),
            "readings": ("readings", town.readings),
            "tv": ("tv", town.tv),
        }
        for name in kinds:
            report = app.ingest(*files[name])
            assert report.rows_quarantined == 0, report.quarantined[:3]
        return app

    return make


@pytest.fixture
def loaded_app(make_loaded_app) -> App:
    """An App on the test database with the town's roster and data ingested."""
    return make_loaded_app()


def set_policy(app: App, household_id: str, policy: str) -> None:
    from sqlmodel import Session

    from data.tables import Household

    with Session(app.engine) as session:
        household = session.get(Household, household_id)
        household.policy = policy
        session.add(household)
        session.commit()


def walk(app: App, until, step: timedelta, escalate: bool = True) -> None:
    """Move the app's clock to ``until`` in steps, detecting (and escalating) at each."""
    until = pd.Timestamp(until).to_pydatetime()
    while app.clock.now() + step <= until:
        app.clock.advance(step)
        app.detect()
        if escalate:
            app.escalate()


@pytest.fixture
def twin_databases(request, tmp_path):
    """Two fresh databases of the kind in ``request.param`` ("sqlite" or "postgres"), for
    tests that run the same scenario two ways and compare."""
    from tests.conftest import _postgres_database, _sqlite_database

    made = []
    for k in range(2):
        folder = tmp_path / f"db{k}"
        folder.mkdir()
        made.append(_sqlite_database(folder) if request.param == "sqlite" else _postgres_database())
    try:
        yield [next(factory) for factory in made]
    finally:
        for factory in made:
            next(factory, None)


def app_with_files(database, files: dict, detection, now) -> App:  # noqa: ANN001
    """An app on ``database`` with a town's roster, contacts, readings and TV files loaded."""
    channel = MemoryChannel()
    app = App.from_settings(
        Settings(database_url=database.url, detection=detection),
        clock=FrozenClock(now),
        channels={"sms": channel, "console": channel},
    )
    for kind, name in [
        ("roster", "households"),
        ("roster", "contacts"),
        ("readings", "readings"),
        ("tv", "tv"),
    ]:
        report = app.ingest(kind, files[name])
        assert report.rows_quarantined == 0, report.quarantined[:3]
    return app
