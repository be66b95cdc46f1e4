"""A source with no successful pull for too long opens one operator incident, closed on recovery."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from data.tables import Incident, IncidentEvent, Notification
from data.tables.incidents import IncidentStatus
from notify.channels.memory import MemoryChannel
from tests.watch.ops.conftest import NOW
from watch.app import App
from watch.clock import FrozenClock
from watch.jobs import pull_all, pull_source
from watch.settings import Settings, SettingsError, SourceSettings, load_settings
from watch.source_health import SOURCE_STALE, check_sources, stale_after


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def channels() -> dict[str, MemoryChannel]:
    return {"console": MemoryChannel(), "sms": MemoryChannel(), "voice": MemoryChannel()}


def _app(database, clock, channels, drop: Path, **source) -> App:  # noqa: ANN001
    meter = SourceSettings(name="meter", path=str(drop), every_minutes=30, **source)
    settings = Settings(database_url=database.url, sources=(meter,))
    return App.from_settings(settings, clock=clock, channels=channels)


def _incidents(engine) -> list[Incident]:  # noqa: ANN001
    with Session(engine) as session:
        return list(session.exec(select(Incident).order_by(Incident.id)).all())


def _alerts(engine) -> list[Notification]:  # noqa: ANN001
    with Session(engine) as session:
        return list(session.exec(select(Notification).order_by(Notification.id)).all())


def _break(drop: Path) -> Path:
    return drop.rename(drop.with_name("drop-gone"))


def test_a_stale_source_opens_one_operator_incident_and_recovery_closes_it(
    database, clock, channels, drop, make_resident
):
    make_resident("h1")  # a household on the roster is never involved
    app = _app(database, clock, channels, drop)
    assert not pull_source(app, "meter").failed
    gone = _break(drop)

    clock.advance(timedelta(minutes=60))
    assert pull_source(app, "meter").failed
    assert _incidents(database.engine) == []  # 60 min without success: not yet 3 x 30

    clock.advance(timedelta(minutes=31))
    pull_source(app, "meter")
    (incident,) = _incidents(database.engine)
    assert (incident.kind, incident.source, incident.household_id) == (SOURCE_STALE, "meter", None)
    assert incident.status == IncidentStatus.open and incident.next_step_at is None
    assert incident.since == NOW and "FileNotFoundError" in incident.reason

    clock.advance(timedelta(minutes=30))
    pull_source(app, "meter")
    app.escalate()
    assert len(_incidents(database.engine)) == 1  # still stale: no second incident
    (alert,) = _alerts(database.engine)
    assert (alert.channel, alert.contact_id, alert.topic) == ("console", None, SOURCE_STALE)
    assert [m.to for m in channels["console"].sent] == ["operator"]
    assert "Source meter" in channels["console"].sent[0].body
    assert channels["sms"].sent == [] and channels["voice"].sent == []

    gone.rename(drop)
    clock.advance(timedelta(minutes=30))
    assert not pull_source(app, "meter").failed
    (closed,) = _incidents(database.engine)
    assert closed.status == IncidentStatus.resolved and closed.resolved_at == clock.now()
    app.escalate()
    assert [n.topic for n in _alerts(database.engine)] == [SOURCE_STALE, "source_recovered"]
    assert channels["sms"].sent == []
    with Session(database.engine) as session:
        events = session.exec(
            select(IncidentEvent.kind).where(IncidentEvent.incident_id == closed.id)
        ).all()
    assert events[0] == "opened" and "resolved" in events


def test_going_stale_again_later_opens_a_new_incident(database, clock, channels, drop):
    app = _app(database, clock, channels, drop, stale_after_minutes=45)
    pull_all(app)
    gone = _break(drop)
    clock.advance(timedelta(minutes=46))
    pull_all(app)
    gone.rename(drop)
    clock.advance(timedelta(minutes=1))
    pull_all(app)
    _break(drop)
    clock.advance(timedelta(minutes=46))

    pull_all(app)

    assert [i.status for i in _incidents(database.engine)] == [
        IncidentStatus.resolved,
        IncidentStatus.open,
    ]


def test_a_source_that_never_succeeded_goes_stale_counted_from_when_it_was_first_seen(
    database, clock, channels, drop
):
    _break(drop)
    app = _app(database, clock, channels, drop)

    pull_all(app)  # first seen now, failing
    assert _incidents(database.engine) == []
    clock.advance(timedelta(minutes=91))
    pull_all(app)

    (incident,) = _incidents(database.engine)
    assert incident.since == NOW and incident.source == "meter"


def test_two_checks_at_once_open_a_single_incident(database, clock, drop):
    source = SourceSettings(name="meter", path=str(drop), every_minutes=30)
    check_sources(engine=database.engine, sources=[source], now=NOW, timezone="Asia/Tokyo")
    later = NOW + timedelta(hours=2)

    first = check_sources(engine=database.engine, sources=[source], now=later, timezone="UTC")
    second = check_sources(engine=database.engine, sources=[source], now=later, timezone="UTC")

    assert len(first.opened) == 1 and second.opened == [] and second.stale == ["meter"]
    assert len(_incidents(database.engine)) == 1


def test_stale_after_defaults_to_three_pulls_and_can_be_set(tmp_path):
    assert stale_after(SourceSettings(name="a", every_minutes=20)) == timedelta(minutes=60)
    assert stale_after(SourceSettings(name="a", stale_after_minutes=5)) == timedelta(minutes=5)
    config = tmp_path / "areawatch.toml"
    config.write_text(
        f'[[sources]]\nname = "a"\npath = "{tmp_path}"\nkind = "readings"\n'
        "stale_after_minutes = 0\n",
        encoding="utf-8",
    )
    with pytest.raises(SettingsError, match="stale_after_minutes must be a number > 0"):
        load_settings(config, environ={})


def test_areawatch_status_lists_a_stale_sources_incident(
    database, clock, channels, drop, make_resident
):
    from io import StringIO

    from rich.console import Console

    from watch.views import collect_status, render_status

    make_resident("h1")
    app = _app(database, clock, channels, drop)
    pull_source(app, "meter")
    _break(drop)
    clock.advance(timedelta(minutes=91))
    pull_source(app, "meter")

    status = collect_status(database.engine, clock.now())
    (incident, household), *others = status.open_incidents
    assert others == [] and household is None and incident.source == "meter"
    out = StringIO()
    render_status(Console(file=out, width=200), status)
    assert "source meter" in out.getvalue() and SOURCE_STALE in out.getvalue()
