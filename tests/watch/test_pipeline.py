"""The whole watch path: files -> detection -> incident -> escalation -> messages."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlmodel import Session, func, select

from data.tables import DetectorCheckpoint, Finding, Incident, IncidentEvent, Notification
from tests.watch.conftest import ONSET, START, walk


def _history(app):
    app.clock.set(START.to_pydatetime())
    walk(app, ONSET - pd.Timedelta(hours=2), timedelta(hours=12), escalate=False)


def test_a_morning_routine_that_never_starts_opens_an_incident_and_asks_the_resident(
    loaded_app, town, channel
):
    app = loaded_app
    _history(app)
    walk(app, ONSET + pd.Timedelta(hours=12), timedelta(minutes=30))

    with Session(app.engine) as session:
        incidents = session.exec(
            select(Incident).where(Incident.household_id == town.collapsed)
        ).all()
        others = session.exec(
            select(Incident).where(
                Incident.household_id != town.collapsed, Incident.kind == "inactivity"
            )
        ).all()
    assert len(incidents) == 1, "one incident for one collapse, however many runs saw it"
    incident = incidents[0]
    assert incident.kind == "inactivity"
    delay = incident.opened_at - ONSET.to_pydatetime()
    # About 8.5 h here: the default kernel width (2 h) keeps false alerts at the rate
    # on real homes, and alerts a little later on this very regular synthetic resident.
    assert timedelta(0) < delay <= timedelta(hours=10)
    assert incident.since <= ONSET.to_pydatetime() + timedelta(minutes=30)
    assert others == [], "the two residents who are fine are left alone"
    # The escalation ran on the same clock: the resident was asked first, then family.
    purposes = [m.purpose for m in channel.sent]
    assert purposes and purposes[0] == "ask"
    with Session(app.engine) as session:
        asked = session.exec(
            select(Notification)
            .where(Notification.incident_id == incident.id)
            .order_by(Notification.created_at, Notification.id)
        ).all()
    assert len(asked) >= 2


def test_running_detection_again_at_the_same_time_changes_nothing(loaded_app):
    app = loaded_app
    _history(app)
    with Session(app.engine) as session:
        before = (
            session.exec(select(func.count()).select_from(Finding)).one(),
            session.exec(select(DetectorCheckpoint.scored_until)).all(),
        )
    report = app.detect()
    assert report.slots_scored == 0
    with Session(app.engine) as session:
        after = (
            session.exec(select(func.count()).select_from(Finding)).one(),
            session.exec(select(DetectorCheckpoint.scored_until)).all(),
        )
    assert before == after


def test_a_meter_that_stops_reporting_opens_an_outage_for_operators_not_a_message_to_family(
    make_loaded_app, town
):
    from sqlalchemy import delete

    from data.tables import Reading

    app = make_loaded_app(kinds=("households", "contacts", "readings"))
    silent = "H002" if town.collapsed != "H002" else "H003"
    gap_start = (START + pd.Timedelta(days=10, hours=1)).to_pydatetime()
    with Session(app.engine) as session:
        session.exec(
            delete(Reading).where(Reading.household_id == silent, Reading.interval_end > gap_start)
        )
        session.commit()
    app.clock.set(START.to_pydatetime())
    walk(app, START + pd.Timedelta(days=10), timedelta(hours=12), escalate=False)
    walk(app, START + pd.Timedelta(days=10, hours=14), timedelta(minutes=30))

    with Session(app.engine) as session:
        incidents = session.exec(select(Incident).where(Incident.household_id == silent)).all()
        kinds = {i.kind for i in incidents}
        messages = session.exec(
            select(Notification).where(Notification.incident_id.in_([i.id for i in incidents]))
        ).all()
    assert kinds == {"outage"}
    assert messages and all(m.contact_id is None and m.channel == "console" for m in messages)


class Boom(Exception):
    """Stands for the process dying between two chunks' commits."""


def test_a_crash_part_way_through_detection_loses_no_household_and_doubles_none(
    loaded_app, monkeypatch
):
    import watch.detect as detect_module
    from watch.app import _AppIncidentHooks

    app = loaded_app
    app.clock.set((START + pd.Timedelta(days=7)).to_pydatetime())
    real_upsert = detect_module.upsert
    calls = {"n": 0}

    def upsert_then_die(session, model, rows, key):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Boom
        real_upsert(session, model, rows, key=key)

    monkeypatch.setattr(detect_module, "upsert", upsert_then_die)
    with pytest.raises(Boom):
        detect_module.run_detection(
            engine=app.engine,
            now=app.clock.now(),
            data_grace=timedelta(0),
            households_per_transaction=1,
            hooks=_AppIncidentHooks(),
        )
    monkeypatch.setattr(detect_module, "upsert", real_upsert)
    with Session(app.engine) as session:
        assert len(session.exec(select(DetectorCheckpoint)).all()) == 1

    app.detect()  # the re-run does the households the crash left, and only those

    with Session(app.engine) as session:
        cursors = session.exec(select(DetectorCheckpoint.scored_until)).all()
        findings = session.exec(select(Finding.household_id, Finding.since, Finding.severity)).all()
    assert len(cursors) == 3 and len(set(cursors)) == 1
    assert len(findings) == len(set(findings)), "no finding was written twice"


def test_every_step_and_message_is_in_the_incident_timeline(loaded_app, town):
    app = loaded_app
    _history(app)
    walk(app, ONSET + pd.Timedelta(hours=10), timedelta(minutes=30))
    with Session(app.engine) as session:
        incident = session.exec(
            select(Incident).where(Incident.household_id == town.collapsed)
        ).one()
        kinds = [
            e.kind
            for e in session.exec(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident.id)
                .order_by(IncidentEvent.at, IncidentEvent.id)
            )
        ]
    assert kinds[0] == "opened"
    assert kinds.count("step") >= 2, "resident's step, then family's"
    assert kinds.count("sent") >= 2


def test_a_silence_ends_early_when_the_household_is_active_again(loaded_app):
    from data.tables.silences import Silence
    from notify.silences import create_silence

    app = loaded_app
    starts = (START + pd.Timedelta(days=5)).to_pydatetime()
    with Session(app.engine) as session:
        create_silence(
            session=session,
            household_id="H002",
            reason="staying with family",
            starts_at=starts,
            ends_at=starts + timedelta(days=10),
            created_by="staff:test",
            now=starts,
        )
        session.commit()
    app.clock.set(starts)
    walk(app, START + pd.Timedelta(days=7), timedelta(hours=6), escalate=False)
    with Session(app.engine) as session:
        silence = session.exec(select(Silence)).one()
    # The resident never left (the simulation kept them home): activity ends the silence.
    assert silence.ended_reason == "activity resumed"
    assert starts + timedelta(hours=2) <= silence.ended_early_at <= starts + timedelta(days=2)


def test_a_residents_all_right_reply_is_fed_back_to_the_detector_once(loaded_app, town):
    from data.tables import Contact
    from notify.replies import handle_inbound_sms
    from watch.state_rows import household_state

    app = loaded_app
    _history(app)
    walk(app, ONSET + pd.Timedelta(hours=10), timedelta(minutes=30))
    with Session(app.engine) as session:
        incident = session.exec(select(Incident)).one()
        resident = session.exec(
            select(Contact).where(
                Contact.household_id == town.collapsed, Contact.role == "resident"
            )
        ).one()
    handle_inbound_sms(engine=app.engine, from_phone=resident.phone, body="1", now=app.clock.now())
    walk(app, ONSET + pd.Timedelta(hours=12), timedelta(minutes=30))

    with Session(app.engine) as session:
        assert session.get(Incident, incident.id).outcome == "fine"
        checkpoint = session.get(DetectorCheckpoint, (town.collapsed, "household"))
    state = household_state(checkpoint.state)
    assert state.outcomes_fed == [incident.id]
